package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// postContainerWait is POST /containers/{id}/wait?condition=: the status
// line goes out at once (clients such as docker run wait for it before
// they start the container), the exit code when the condition holds.
func (s *Server) postContainerWait(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	until, err := waitCondition(r.URL.Query().Get("condition"), c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	last, err := s.containers.WaitFor(ctx, c.ID, until)
	if _, gerr := s.containers.Get(ctx, c.ID); errdefs.IsNotFound(gerr) && c.Origin == store.OriginDocker {
		// Removed: its own sandbox goes right after it; the client may
		// count on everything being gone (docker run --rm).
		s.waitSandboxGone(ctx, c.SandboxID)
	}
	resp := container.WaitResponse{StatusCode: int64(last.ExitCode)}
	if err != nil && !errdefs.IsNotFound(err) {
		if ctx.Err() != nil {
			return nil // the client went away
		}
		resp.Error = &container.WaitExitError{Message: err.Error()}
	}
	return json.NewEncoder(w).Encode(resp)
}

// waitSandboxGone waits a while for a removed container's sandbox to be
// removed too, unless other containers still use it.
func (s *Server) waitSandboxGone(ctx context.Context, id string) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := s.pods.Get(ctx, id); err != nil {
			return
		}
		if others, err := s.containers.Match(ctx, runtime.ContainerFilter{SandboxIDPrefix: id}); err != nil || len(others) > 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// waitCondition is docker's wait condition as a test on the record:
// "not-running" (the default) holds at once for a container that does
// not run, "next-exit" at its next exit, "removed" once it is gone.
func waitCondition(cond string, c store.Container) (func(store.Container, bool) bool, error) {
	switch container.WaitCondition(cond) {
	case "", container.WaitConditionNotRunning:
		return func(c store.Container, gone bool) bool {
			return gone || runtime.StateOf(c) != runtime.Running
		}, nil
	case container.WaitConditionNextExit:
		since := c.FinishedAt
		return func(c store.Container, gone bool) bool {
			return gone || !c.FinishedAt.IsZero() && !c.FinishedAt.Equal(since)
		}, nil
	case container.WaitConditionRemoved:
		return func(_ store.Container, gone bool) bool { return gone }, nil
	}
	return nil, errorf(errdefs.ErrInvalidArgument, "invalid condition: %q", cond)
}
