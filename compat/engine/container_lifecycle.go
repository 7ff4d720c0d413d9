package engine

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// defaultStopTimeout is docker's grace period of a stop, in seconds.
const defaultStopTimeout = 10

// postContainerStart is POST /containers/{id}/start; an exited container
// starts again in place.
func (s *Server) postContainerStart(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if runtime.StateOf(c) == runtime.Running {
		return errorf(errdefs.ErrNotModified, "container already started")
	}
	if err := s.startContainer(ctx, c, true); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startContainer starts c, relaunching it first if it exited. byUser
// (docker start/restart, not a restart policy) clears the stopped-by-user
// flag and the restart count, as docker does.
func (s *Server) startContainer(ctx context.Context, c store.Container, byUser bool) error {
	if byUser {
		if _, err := s.containers.Modify(ctx, c.ID, func(c *store.Container) {
			c.StoppedByUser, c.RestartCount = false, 0
		}); err != nil {
			return err
		}
	}
	if runtime.StateOf(c) == runtime.Exited {
		sb, err := s.pods.Get(ctx, c.SandboxID)
		if err != nil {
			return err
		}
		if !sb.Ready() {
			return errorf(errdefs.ErrFailedPrecondition, "cannot start container %s: its network namespace is gone", c.ID)
		}
		if err := s.containers.Relaunch(ctx, c.ID); err != nil {
			return err
		}
		s.attaching.relaunched(ctx, c.ID)
	}
	if err := s.mountContainerVolumes(ctx, c); err != nil {
		return err
	}
	if err := s.containers.Start(ctx, c.ID); err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			return errorf(errdefs.ErrNotModified, "container already started")
		}
		return errorf(errdefs.ErrInvalidArgument, "failed to start container %s: %v", c.ID, err)
	}
	return nil
}

// stopTimeout is the grace period of a stop: ?t=, else the container's
// own, else docker's 10 s. A negative one waits for ever.
func stopTimeout(r *http.Request, c store.Container) (time.Duration, error) {
	dflt := defaultStopTimeout
	if c.StopTimeout != nil {
		dflt = *c.StopTimeout
	}
	t, err := intValue(r, "t", dflt)
	if err != nil {
		return 0, err
	}
	if t < 0 {
		return 100 * 365 * 24 * time.Hour, nil
	}
	return time.Duration(t) * time.Second, nil
}

// postContainerStop is POST /containers/{id}/stop.
func (s *Server) postContainerStop(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	timeout, err := stopTimeout(r, c)
	if err != nil {
		return err
	}
	if runtime.StateOf(c) != runtime.Running {
		return errorf(errdefs.ErrNotModified, "container already stopped")
	}
	if err := s.stopContainer(ctx, c, timeout, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	s.emitContainer(c, "stop", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopContainer marks c stopped by the user (so no restart policy
// starts it again) and stops it.
func (s *Server) stopContainer(ctx context.Context, c store.Container, timeout time.Duration, signal string) error {
	if signal != "" && runtime.SignalName(signal) == "" {
		return errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", signal)
	}
	if _, err := s.containers.Modify(ctx, c.ID, func(c *store.Container) { c.StoppedByUser = true }); err != nil {
		return err
	}
	return s.containers.Stop(ctx, c.ID, timeout, signal)
}

// postContainerRestart is POST /containers/{id}/restart: stop (if it
// runs), then start again.
func (s *Server) postContainerRestart(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	timeout, err := stopTimeout(r, c)
	if err != nil {
		return err
	}
	if runtime.StateOf(c) == runtime.Running {
		if err := s.stopContainer(ctx, c, timeout, r.URL.Query().Get("signal")); err != nil {
			return err
		}
	}
	if c, err = s.containers.Get(ctx, c.ID); err != nil {
		return err
	}
	if err := s.startContainer(ctx, c, true); err != nil {
		return err
	}
	s.emitContainer(c, "restart", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainerKill is POST /containers/{id}/kill?signal=.
func (s *Server) postContainerKill(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if v := r.URL.Query().Get("signal"); v != "" {
		if sig = runtime.ParseSignal(v, 0); sig == 0 {
			return errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", v)
		}
	}
	if runtime.StateOf(c) != runtime.Running {
		return errorf(errdefs.ErrConflict, "Cannot kill container: %s: Container %s is not running", r.PathValue("id"), c.ID)
	}
	if sig == syscall.SIGKILL || sig == runtime.ParseSignal(c.StopSignal, syscall.SIGTERM) {
		if _, err := s.containers.Modify(ctx, c.ID, func(c *store.Container) { c.StoppedByUser = true }); err != nil {
			return err
		}
	}
	if err := s.containers.Kill(ctx, c.ID, sig); err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			return errorf(errdefs.ErrConflict, "Cannot kill container: %s: Container %s is not running", r.PathValue("id"), c.ID)
		}
		return err
	}
	s.emitContainer(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainerPause is POST /containers/{id}/pause.
func (s *Server) postContainerPause(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case runtime.StateOf(c) != runtime.Running:
		return errorf(errdefs.ErrConflict, "Container %s is not running", c.ID)
	case c.Paused:
		return errorf(errdefs.ErrConflict, "Container %s is already paused", c.ID)
	}
	if err := s.containers.Pause(ctx, c.ID); err != nil {
		return err
	}
	s.emitContainer(c, "pause", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainerUnpause is POST /containers/{id}/unpause.
func (s *Server) postContainerUnpause(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if !c.Paused || runtime.StateOf(c) != runtime.Running {
		return errorf(errdefs.ErrConflict, "Container %s is not paused", c.ID)
	}
	if err := s.containers.Unpause(ctx, c.ID); err != nil {
		return err
	}
	s.emitContainer(c, "unpause", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteContainer is DELETE /containers/{id}?force=&v=.
func (s *Server) deleteContainer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if runtime.StateOf(c) == runtime.Running && !boolValue(r, "force") {
		if c.Paused {
			return errorf(errdefs.ErrConflict, "You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", c.ID)
		}
		return errorf(errdefs.ErrConflict, "You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.ID)
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return err
	}
	if boolValue(r, "v") {
		s.removeAnonymousVolumes(ctx, c)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeContainer removes c (killing it) and, when no other container
// shares it, its sandbox.
func (s *Server) removeContainer(ctx context.Context, c store.Container) error {
	if c.Paused {
		if err := s.containers.Unpause(ctx, c.ID); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return err
		}
	}
	if c.Origin == store.OriginDocker {
		mates, err := s.containers.Match(ctx, runtime.ContainerFilter{SandboxIDPrefix: c.SandboxID})
		if err != nil {
			return err
		}
		if len(mates) == 1 && mates[0].ID == c.ID {
			err := s.pods.Remove(ctx, c.SandboxID)
			if err == nil || !errdefs.IsNotFound(err) {
				return err
			}
		}
	}
	if err := s.containers.Remove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// postContainerRename is POST /containers/{id}/rename?name=.
func (s *Server) postContainerRename(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	name := stringsTrimSlash(r.URL.Query().Get("name"))
	switch {
	case name == "":
		return errorf(errdefs.ErrInvalidArgument, "Neither old nor new names may be empty")
	case !validName.MatchString(name):
		return errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	case c.Origin != store.OriginDocker:
		return errorf(errdefs.ErrFailedPrecondition, "container %s belongs to Kubernetes and cannot be renamed", c.ID)
	case name == c.Key:
		return errorf(errdefs.ErrInvalidArgument, "Renaming a container with the same name as its current name")
	}
	if holder := s.nameHolder(ctx, name); holder != "" {
		return nameConflict(name, holder)
	}
	old := c.Key
	if err := s.containers.Rename(ctx, c.ID, name); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			return nameConflict(name, s.nameHolder(ctx, name))
		}
		return err
	}
	if renamed, err := s.containers.Get(ctx, c.ID); err == nil {
		s.emitContainer(renamed, "rename", map[string]string{"oldName": "/" + old})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stringsTrimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
