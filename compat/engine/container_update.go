package engine

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// postContainerUpdate is POST /containers/{id}/update: resource limits
// (applied at once to a running container, and kept for its next start)
// and the restart policy.
func (s *Server) postContainerUpdate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	var req container.UpdateConfig
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := container.ValidateRestartPolicy(req.RestartPolicy); err != nil {
		return errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	if c.AutoRemove && !req.RestartPolicy.IsNone() {
		return errorf(errdefs.ErrInvalidArgument, "Cannot update restart policy for container with AutoRemove enabled")
	}
	res, err := resources(req.Resources)
	if err != nil {
		return err
	}
	merged := mergeResources(c.Resources, res)
	if res != nil {
		switch runtime.StateOf(c) {
		case runtime.Running, runtime.Created:
			if err := s.containers.UpdateResources(ctx, c.ID, merged); err != nil {
				if errors.Is(err, errdefs.ErrFailedPrecondition) {
					return errorf(errdefs.ErrConflict, "Container %s is not running", c.ID)
				}
				return errorf(errdefs.ErrInvalidArgument, "Cannot update container %s: %v", c.ID, err)
			}
		}
	}
	if _, err := s.containers.Modify(ctx, c.ID, func(c *store.Container) {
		if res != nil {
			c.Resources = merged
		}
		if req.RestartPolicy.Name != "" {
			c.RestartPolicy = store.RestartPolicy{Name: string(req.RestartPolicy.Name), MaximumRetryCount: req.RestartPolicy.MaximumRetryCount}
		}
	}); err != nil {
		return err
	}
	s.emitContainer(c, "update", nil)
	return writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
}

// mergeResources is old with what upd sets replaced: docker update
// changes only the limits it names.
func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if upd == nil {
		return old
	}
	if old == nil {
		return upd
	}
	out := *old
	if m := upd.Memory; m != nil {
		mem := specs.LinuxMemory{}
		if out.Memory != nil {
			mem = *out.Memory
		}
		if m.Limit != nil {
			mem.Limit = m.Limit
		}
		if m.Reservation != nil {
			mem.Reservation = m.Reservation
		}
		if m.Swap != nil {
			mem.Swap = m.Swap
		}
		if m.Swappiness != nil {
			mem.Swappiness = m.Swappiness
		}
		out.Memory = &mem
	}
	if c := upd.CPU; c != nil {
		cpu := specs.LinuxCPU{}
		if out.CPU != nil {
			cpu = *out.CPU
		}
		if c.Shares != nil {
			cpu.Shares = c.Shares
		}
		if c.Quota != nil {
			cpu.Quota = c.Quota
		}
		if c.Period != nil {
			cpu.Period = c.Period
		}
		if c.Cpus != "" {
			cpu.Cpus = c.Cpus
		}
		if c.Mems != "" {
			cpu.Mems = c.Mems
		}
		out.CPU = &cpu
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		out.BlockIO = upd.BlockIO
	}
	return &out
}

// postContainerResize is POST /containers/{id}/resize?h=&w=.
func (s *Server) postContainerResize(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	h, err := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	if err != nil {
		return errorf(errdefs.ErrInvalidArgument, "invalid resize height %q", r.URL.Query().Get("h"))
	}
	wd, err := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err != nil {
		return errorf(errdefs.ErrInvalidArgument, "invalid resize width %q", r.URL.Query().Get("w"))
	}
	if err := s.containers.Resize(ctx, c.ID, runtime.TermSize{Width: uint16(wd), Height: uint16(h)}); err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			return errorf(errdefs.ErrConflict, "Container %s is not running", c.ID)
		}
		return err
	}
	s.emitContainer(c, "resize", map[string]string{"height": strconv.FormatUint(h, 10), "width": strconv.FormatUint(wd, 10)})
	w.WriteHeader(http.StatusOK)
	return nil
}

// postContainersPrune is POST /containers/prune: removes the containers
// that are not running (docker's containers only), filtered by until and
// label.
func (s *Server) postContainersPrune(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, err := parseFilters(r, "until", "label", "label!")
	if err != nil {
		return err
	}
	var until time.Time
	for _, u := range f["until"] {
		if until, err = pruneUntil(u); err != nil {
			return err
		}
	}
	cs, err := s.containers.Match(ctx, runtime.ContainerFilter{Origin: store.OriginDocker, Made: true})
	if err != nil {
		return err
	}
	rep := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range cs {
		if runtime.StateOf(c) == runtime.Running || !f.MatchLabels("label", c.Labels) ||
			!until.IsZero() && !c.CreatedAt.Before(until) {
			continue
		}
		if err := s.removeContainer(ctx, c); err != nil {
			s.log.Warn("prune: removing a container", "container", c.ID, "error", err)
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
	}
	s.emit("container", "prune", "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return writeJSON(w, http.StatusOK, rep)
}

// pruneUntil reads a prune filter's until: a unix time, RFC 3339, or a
// duration before now ("24h").
func pruneUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	t, err := unixTime(v)
	if err != nil || t.IsZero() {
		return time.Time{}, errorf(errdefs.ErrInvalidArgument, "invalid filter 'until=%s'", v)
	}
	return t, nil
}
