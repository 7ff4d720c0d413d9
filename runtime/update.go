package runtime

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// UpdateResources changes a container's cgroup limits through the OCI
// runtime and records them, so status reports what is in force.
func (m *Manager) UpdateResources(ctx context.Context, id string, res *specs.LinuxResources) error {
	if res == nil {
		return fmt.Errorf("no resources to update: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(c.ID)
	defer unlock()
	switch StateOf(c) {
	case Created, Running:
	default:
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	rt, err := m.ociRuntime(c.RuntimeHandler)
	if err != nil {
		return err
	}
	data, err := json.Marshal(m.supportedResources(res))
	if err != nil {
		return err
	}
	if err := rt.Update(ctx, c.ID, data); err != nil {
		return fmt.Errorf("updating the resources of %s: %w", c.ID, err)
	}
	_, err = m.update(c.ID, func(c *store.Container) { c.Resources = res })
	return err
}
