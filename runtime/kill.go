package runtime

import (
	"context"
	"fmt"
	"syscall"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Kill sends sig to the container's init process (docker's kill). A
// container that is not running wraps errdefs.ErrFailedPrecondition.
func (m *Manager) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if StateOf(c) != Running {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if err := m.launcher.Kill(ctx, c.RuntimeHandler, c.ID, sig, false); err != nil {
		return fmt.Errorf("signalling container %s: %w", c.ID, err)
	}
	if c.Paused && (sig == syscall.SIGKILL || sig == syscall.SIGTERM) {
		// A frozen process gets the signal once thawed, as docker does.
		return m.Unpause(ctx, c.ID)
	}
	return nil
}

// Modify changes the fields of a container's record that a front door
// owns (the docker side's: restart count, health, restart policy, the
// stopped-by-user flag...) in one transaction. fn must leave the
// life-cycle fields (timestamps, pids, exit) alone: the Manager owns
// those.
func (m *Manager) Modify(ctx context.Context, id string, fn func(*store.Container)) (store.Container, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return c, err
	}
	return m.update(c.ID, fn)
}
