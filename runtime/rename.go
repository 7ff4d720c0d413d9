package runtime

import (
	"context"
	"fmt"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Rename gives a container a new name: its entry in the name index (Key)
// and its Name. A name in use by another container wraps
// errdefs.ErrAlreadyExists, and nothing changes.
func (m *Manager) Rename(ctx context.Context, id, name string) error {
	if name == "" {
		return fmt.Errorf("empty container name: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(c.ID)
	defer unlock()
	old := c.Key
	err = m.db.Update(func(tx *store.Tx) error {
		c, err := store.Get[store.Container](tx, store.Containers, c.ID)
		if err != nil {
			return err
		}
		if err := store.ReserveName(tx, store.ContainerNames, name, c.ID); err != nil {
			return err
		}
		if err := store.ReleaseName(tx, store.ContainerNames, c.Key, c.ID); err != nil {
			return err
		}
		c.Key, c.Name = name, name
		return store.Put(tx, store.Containers, c.ID, c)
	})
	if err != nil {
		return err
	}
	m.names.Release(old, c.ID)
	m.names.Reserve(name, c.ID)
	m.changed(c.ID)
	return nil
}
