package runtime

import (
	"context"
	"fmt"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/shim"
)

// ReopenLog asks the container's shim to reopen its log file, after the
// kubelet renamed it for rotation. The shim swaps files between whole
// records, so no line is lost or split across the two files.
func (m *Manager) ReopenLog(ctx context.Context, id string) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if StateOf(c) != Running {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if c.LogPath == "" {
		return fmt.Errorf("container %s has no log: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	socket, err := m.shimSocket(c.ID)
	if err != nil {
		return err
	}
	return shim.ReopenLog(ctx, socket)
}
