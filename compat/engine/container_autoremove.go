package engine

import (
	"context"

	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// autoRemove lets go of the volumes of docker's containers when they
// exit and removes the --rm ones (with their anonymous volumes), and at
// start those that exited while berthd was away. It returns at once;
// the work goes on until ctx ends.
func (s *Server) autoRemove(ctx context.Context) {
	if s.events == nil || s.containers == nil {
		return
	}
	sub := s.events.Subscribe()
	if cs, err := s.containers.Match(ctx, runtime.ContainerFilter{Origin: store.OriginDocker}); err == nil {
		for _, c := range cs {
			if c.AutoRemove && runtime.StateOf(c) == runtime.Exited {
				s.exited(ctx, c.ID)
			}
		}
	}
	go func() {
		defer sub.Close()
		for {
			evs, err := sub.Next(ctx.Done())
			if err != nil {
				s.log.Error("auto-remove: the event stream broke; --rm containers that exit are kept", "error", err)
				return
			}
			if evs == nil {
				return
			}
			for _, e := range evs {
				if e.Kind == events.Stopped && !e.Sandbox && e.Origin == string(store.OriginDocker) {
					go s.exited(ctx, e.ID)
				}
			}
		}
	}()
}

// exited releases the volumes of container id, which exited, and
// removes it if it is a --rm container.
func (s *Server) exited(ctx context.Context, id string) {
	c, err := s.containers.Get(ctx, id)
	if err != nil || runtime.StateOf(c) != runtime.Exited {
		return
	}
	s.releaseVolumes(ctx, c)
	if !c.AutoRemove {
		return
	}
	if err := s.removeContainer(ctx, c); err != nil {
		s.log.Warn("auto-remove: removing an exited --rm container", "container", id, "error", err)
		return
	}
	s.removeAnonymousVolumes(ctx, c)
}
