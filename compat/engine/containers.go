package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

func (s *Server) containerRoutes() {
	s.route("POST", "/containers/create", s.postContainersCreate)
	s.route("GET", "/containers/json", s.getContainersJSON)
	s.route("GET", "/containers/{id}/json", s.getContainerJSON)
	s.route("POST", "/containers/{id}/start", s.postContainerStart)
	s.route("POST", "/containers/{id}/stop", s.postContainerStop)
	s.route("POST", "/containers/{id}/restart", s.postContainerRestart)
	s.route("POST", "/containers/{id}/kill", s.postContainerKill)
	s.route("POST", "/containers/{id}/pause", s.postContainerPause)
	s.route("POST", "/containers/{id}/unpause", s.postContainerUnpause)
	s.route("POST", "/containers/{id}/wait", s.postContainerWait)
	s.route("DELETE", "/containers/{id}", s.deleteContainer)
	s.route("POST", "/containers/{id}/rename", s.postContainerRename)
	s.route("POST", "/containers/{id}/update", s.postContainerUpdate)
	s.route("POST", "/containers/{id}/resize", s.postContainerResize)
	s.route("GET", "/containers/{id}/logs", s.getContainerLogs)
	s.route("POST", "/containers/{id}/attach", s.postContainerAttach)
	s.route("POST", "/containers/prune", s.postContainersPrune)
}

// lookupContainer finds a container as docker does: full id, name (with
// or without its "/"), dockershim's name of a CRI container, or a unique
// id prefix. None is docker's "No such container".
func (s *Server) lookupContainer(ctx context.Context, ref string) (store.Container, error) {
	name := strings.TrimPrefix(ref, "/")
	c, err := s.containers.Get(ctx, name)
	if err == nil {
		return c, nil
	}
	if errdefs.IsNotFound(err) && strings.HasPrefix(name, "k8s_") {
		if cs, lerr := s.containers.List(ctx); lerr == nil {
			for _, c := range cs {
				if c.Origin != store.OriginDocker && s.dockerName(ctx, c) == name {
					return c, nil
				}
			}
		}
	}
	switch {
	case errdefs.IsNotFound(err):
		return c, errorf(errdefs.ErrNotFound, "No such container: %s", ref)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return c, errorf(errdefs.ErrInvalidArgument, "Multiple IDs found with provided prefix: %s", ref)
	}
	return c, err
}

// dockerName is the container's name without docker's "/": its own for
// docker's containers, dockershim's k8s_<container>_<pod>_<namespace>_<uid>_<attempt>
// for the CRI's.
func (s *Server) dockerName(ctx context.Context, c store.Container) string {
	if c.Origin == store.OriginDocker {
		return c.Key
	}
	sb, err := s.pods.Get(ctx, c.SandboxID)
	if err != nil {
		return fmt.Sprintf("k8s_%s_%s_%d", c.Name, c.SandboxID, c.Attempt)
	}
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", c.Name, sb.Name, sb.Namespace, sb.UID, c.Attempt)
}

// nameHolder is the id of the container named name, or "".
func (s *Server) nameHolder(ctx context.Context, name string) string {
	c, err := s.containers.Get(ctx, name)
	if err == nil && c.Key == name {
		return c.ID
	}
	return ""
}
