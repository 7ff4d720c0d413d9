package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Remove deletes the volume called name and its data. A volume that
// containers mount is refused with errdefs.ErrConflict and docker's
// message, force or not (docker's force only ignores a missing volume).
func (m *Manager) Remove(ctx context.Context, name string, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, trash := m.volumeDir(name), filepath.Join(m.dir, trashPrefix+name)
	moved := false
	err := m.db.Update(func(tx *store.Tx) error {
		v, err := get(tx, name)
		if err != nil {
			return err
		}
		users, err := usersOf(tx, name)
		if err != nil {
			return err
		}
		if ids := users[name]; len(ids) > 0 {
			return &opError{op: "remove", name: name, err: &conflict{fmt.Sprintf("volume is in use - [%s]", strings.Join(ids, ", "))}}
		}
		if err := unmountAll(m.Mountpoint(v)); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		// Aside before the commit; restored if the commit fails, and by
		// New if berthd dies before it.
		if err := os.Rename(dir, trash); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		} else if err == nil {
			moved = true
		}
		return store.Delete(tx, store.Volumes, name)
	})
	if err != nil {
		if moved {
			if rerr := os.Rename(trash, dir); rerr != nil {
				m.log.Error("restoring a volume's directory", "volume", name, "error", rerr)
			}
		}
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	if moved {
		if err := removeAll(trash); err != nil {
			// The record is gone; New retries.
			m.log.Warn("deleting a removed volume's data", "volume", name, "error", err)
		}
	}
	m.log.Debug("removed volume", "volume", name)
	return nil
}

// conflict is a refusal whose text is docker's exact message.
type conflict struct{ msg string }

func (e *conflict) Error() string { return e.msg }
func (e *conflict) Unwrap() error { return errdefs.ErrConflict }

// removeAll deletes p after unmounting whatever is mounted below it (a
// volume's file system left mounted by a crash).
func removeAll(p string) error {
	if err := unmountAll(p); err != nil {
		return err
	}
	return os.RemoveAll(p)
}
