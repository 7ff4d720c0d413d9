package engine

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// getContainersJSON is GET /containers/json: the containers of both
// doors, newest first; without ?all only the running ones.
func (s *Server) getContainersJSON(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, err := parseFilters(r, "ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
		"label", "name", "network", "publish", "since", "status", "volume")
	if err != nil {
		return err
	}
	limit, err := intValue(r, "limit", -1)
	if err != nil {
		return err
	}
	all := boolValue(r, "all") || limit > 0
	for _, st := range f["status"] {
		if err := container.ValidateContainerState(container.ContainerState(st)); err != nil {
			return errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
		}
		all = true
	}
	for _, h := range f["health"] {
		if err := container.ValidateHealthStatus(container.HealthStatus(h)); err != nil {
			return errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
		}
	}
	var exited []int
	for _, e := range f["exited"] {
		n, err := strconv.Atoi(e)
		if err != nil {
			return errorf(errdefs.ErrInvalidArgument, "invalid filter 'exited=%s'", e)
		}
		exited = append(exited, n)
	}
	cs, err := s.containers.Match(ctx, runtime.ContainerFilter{Made: true})
	if err != nil {
		return err
	}
	slices.SortFunc(cs, func(a, b store.Container) int { return b.CreatedAt.Compare(a.CreatedAt) })
	// before/since bound by another container's creation.
	var before, since time.Time
	for _, key := range []string{"before", "since"} {
		for _, ref := range f[key] {
			other, err := s.lookupContainer(ctx, ref)
			if err != nil {
				return err
			}
			if key == "before" {
				before = other.CreatedAt
			} else {
				since = other.CreatedAt
			}
		}
	}
	sandboxes := map[string]store.Sandbox{}
	if sbs, err := s.pods.List(ctx); err == nil {
		for _, sb := range sbs {
			sandboxes[sb.ID] = sb
		}
	}
	names := map[string]bool{}
	for _, n := range f["name"] {
		names[n] = true
	}
	now := time.Now()
	out := []container.Summary{}
	for _, c := range cs {
		sb := sandboxes[c.SandboxID]
		state := dockerState(c)
		name := s.dockerName(ctx, c)
		switch {
		case !all && state != container.StateRunning && state != container.StatePaused:
			continue
		case !f.Match("status", string(state)):
			continue
		case f.Has("id") && !slices.ContainsFunc(f["id"], func(p string) bool { return strings.HasPrefix(c.ID, p) }):
			continue
		case f.Has("name") && !matchName(f["name"], name):
			continue
		case !f.MatchLabels("label", c.Labels):
			continue
		case len(exited) > 0 && (state != container.StateExited || !slices.Contains(exited, int(c.ExitCode))):
			continue
		case f.Has("health") && !f.Match("health", healthStatus(c)):
			continue
		case f.Has("ancestor") && !s.matchAncestor(ctx, f["ancestor"], c):
			continue
		case f.Has("network") && !matchNetwork(f["network"], c, sb):
			continue
		case f.Has("volume") && !matchVolume(f["volume"], c):
			continue
		case !before.IsZero() && !c.CreatedAt.Before(before):
			continue
		case !since.IsZero() && !c.CreatedAt.After(since):
			continue
		case f.Has("publish") && !matchPorts(f["publish"], sb):
			continue
		case f.Has("expose") && !slices.ContainsFunc(f["expose"], func(p string) bool { return slices.Contains(c.ExposedPorts, withProto(p)) }):
			continue
		}
		sum := s.summary(ctx, c, sb, name, now)
		if boolValue(r, "size") {
			rw, rootfs := s.containerSize(ctx, c)
			sum.SizeRw, sum.SizeRootFs = rw, rootfs
		}
		out = append(out, sum)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) summary(ctx context.Context, c store.Container, sb store.Sandbox, name string, now time.Time) container.Summary {
	sum := container.Summary{
		ID: c.ID, Names: []string{"/" + name}, Image: c.Image, ImageID: c.ImageID.String(),
		Command: strings.Join(argv(c), " "), Created: c.CreatedAt.Unix(), Labels: c.Labels,
		State: dockerState(c), Status: statusString(c, now), Ports: []container.PortSummary{},
		Mounts: mountPoints(c),
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = networkMode(c, sb)
	if c.Health != nil {
		sum.Health = &container.HealthSummary{Status: container.HealthStatus(c.Health.Status), FailingStreak: c.Health.FailingStreak}
	}
	for _, p := range c.ExposedPorts {
		num, proto, _ := strings.Cut(p, "/")
		n, _ := strconv.Atoi(num)
		published := false
		for _, pm := range sb.PortMappings {
			if int(pm.ContainerPort) == n && pm.Protocol == proto {
				published = true
				ip := netip.IPv4Unspecified()
				if a, err := netip.ParseAddr(pm.HostIP); err == nil {
					ip = a
				}
				sum.Ports = append(sum.Ports, container.PortSummary{IP: ip, PrivatePort: uint16(n), PublicPort: uint16(pm.HostPort), Type: proto})
			}
		}
		if !published {
			sum.Ports = append(sum.Ports, container.PortSummary{PrivatePort: uint16(n), Type: proto})
		}
	}
	ns := s.networkSettings(ctx, c, sb)
	sum.NetworkSettings = &container.NetworkSettingsSummary{Networks: ns.Networks}
	return sum
}

// containerSize is docker's SizeRw (the writable layer) and SizeRootFs
// (that and the image's layers).
func (s *Server) containerSize(ctx context.Context, c store.Container) (rw, rootfs int64) {
	rw, _, err := s.containers.LayerUsage(ctx, c.ID)
	if err != nil {
		s.log.Debug("measuring a writable layer", "container", c.ID, "error", err)
	}
	rootfs = rw
	if img, err := s.images.Get(ctx, c.ImageID.String()); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}

func healthStatus(c store.Container) string {
	if c.Health == nil || c.Health.Status == "" {
		return string(container.NoHealthcheck)
	}
	return c.Health.Status
}

// matchName is docker's name filter: a regular expression matched
// against the name (with its "/" too).
func matchName(patterns []string, name string) bool {
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			if strings.Contains(name, p) {
				return true
			}
			continue
		}
		if re.MatchString(name) || re.MatchString("/"+name) {
			return true
		}
	}
	return false
}

func (s *Server) matchAncestor(ctx context.Context, refs []string, c store.Container) bool {
	for _, ref := range refs {
		if ref == c.Image || strings.HasPrefix(strings.TrimPrefix(c.ImageID.String(), "sha256:"), strings.TrimPrefix(ref, "sha256:")) {
			return true
		}
		if img, err := s.images.Get(ctx, ref); err == nil && img.ID == c.ImageID {
			return true
		}
	}
	return false
}

func matchNetwork(nets []string, c store.Container, sb store.Sandbox) bool {
	mode := networkMode(c, sb)
	for _, n := range nets {
		if n == mode || n == sb.Network || slices.ContainsFunc(sb.Networks, func(a store.NetworkAttachment) bool { return dockerNetworkName(a.Network) == n }) {
			return true
		}
	}
	return false
}

func matchVolume(vols []string, c store.Container) bool {
	for _, v := range vols {
		if slices.ContainsFunc(c.Mounts, func(m store.Mount) bool { return m.Volume == v || m.Source == v || m.Destination == v }) {
			return true
		}
	}
	return false
}

func withProto(p string) string {
	if !strings.Contains(p, "/") {
		return p + "/tcp"
	}
	return p
}

func matchPorts(ports []string, sb store.Sandbox) bool {
	for _, p := range ports {
		num, proto, _ := strings.Cut(withProto(p), "/")
		for _, pm := range sb.PortMappings {
			if strconv.Itoa(int(pm.ContainerPort)) == num && pm.Protocol == proto {
				return true
			}
		}
	}
	return false
}
