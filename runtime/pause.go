package runtime

import (
	"context"
	"fmt"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Pause freezes every process of a running container (the cgroup
// freezer, through the OCI runtime's pause). A container that is not
// running, or already paused, wraps errdefs.ErrFailedPrecondition.
func (m *Manager) Pause(ctx context.Context, id string) error {
	return m.setPaused(ctx, id, true)
}

// Unpause thaws a paused container. One that is not paused wraps
// errdefs.ErrFailedPrecondition.
func (m *Manager) Unpause(ctx context.Context, id string) error {
	return m.setPaused(ctx, id, false)
}

func (m *Manager) setPaused(ctx context.Context, id string, paused bool) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(c.ID)
	defer unlock()
	if c, err = m.Get(ctx, c.ID); err != nil {
		return err
	}
	switch {
	case StateOf(c) != Running:
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	case paused && c.Paused:
		return fmt.Errorf("container %s is already paused: %w", c.ID, errdefs.ErrFailedPrecondition)
	case !paused && !c.Paused:
		return fmt.Errorf("container %s is not paused: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	rt, err := m.ociRuntime(c.RuntimeHandler)
	if err != nil {
		return err
	}
	if paused {
		err = rt.Pause(ctx, c.ID)
	} else {
		err = rt.Resume(ctx, c.ID)
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	_, err = m.update(c.ID, func(c *store.Container) { c.Paused = paused })
	return err
}
