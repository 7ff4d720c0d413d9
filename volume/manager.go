// Package volume is the docker door's named volumes with the "local"
// driver, as docker keeps them: a record in the store (Volumes bucket) and
// a directory <root>/volumes/NAME/_data that containers bind-mount. A
// volume whose options name a file system (type=tmpfs, o=bind with a
// device) has it mounted on _data while containers use it (Mount and
// Unmount).
//
// A volume is in use while any container record mounts it (store.Mount's
// Volume names it), running or not, as in docker: such a volume is not
// removed without the containers.
//
// Crash safety: Create makes the directory, then commits the record; a
// directory left without a record by a crash is empty and New sweeps it.
// Remove moves the directory aside to volumes/.trash-NAME in the
// transaction that deletes the record (and moves it back if the commit
// fails); New deletes trash whose record is gone and restores trash whose
// record survived.
package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// DriverLocal is the only volume driver: directories on the host.
const DriverLocal = "local"

// LabelAnonymous marks an anonymous volume, as docker 23+ labels them
// (and `volume prune` without all=true removes only those).
const LabelAnonymous = "com.docker.volume.anonymous"

const trashPrefix = ".trash-"

// Options configure a Manager.
type Options struct {
	DB *store.DB
	// Root is the daemon's root directory; volumes live in Root/volumes.
	Root   string
	Logger *slog.Logger
}

// Manager creates, lists, mounts and removes volumes.
type Manager struct {
	db  *store.DB
	dir string
	log *slog.Logger
	// mu serialises the file-system side of create, remove, mount and
	// unmount (records are guarded by their transactions).
	mu sync.Mutex
}

// New opens the volumes under o.Root and finishes what a crash left
// half done (see the package doc).
func New(o Options) (*Manager, error) {
	if o.DB == nil || o.Root == "" {
		return nil, fmt.Errorf("volume manager needs a store and a root: %w", errdefs.ErrInvalidArgument)
	}
	m := &Manager{db: o.DB, dir: filepath.Join(o.Root, "volumes"), log: o.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	if err := os.MkdirAll(m.dir, 0o711); err != nil {
		return nil, err
	}
	if err := m.sweep(); err != nil {
		return nil, fmt.Errorf("sweeping %s: %w", m.dir, err)
	}
	return m, nil
}

// sweep restores or deletes the trash of interrupted removals and deletes
// directories that an interrupted create left empty and without a record.
func (m *Manager) sweep() error {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	var names []string
	if err := m.db.View(func(tx *store.Tx) error {
		names = store.KeysWithPrefix(tx, store.Volumes, "")
		return nil
	}); err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(m.dir, name)
		switch {
		case strings.HasPrefix(name, trashPrefix):
			orig := strings.TrimPrefix(name, trashPrefix)
			if _, found := slices.BinarySearch(names, orig); found {
				if _, err := os.Stat(m.volumeDir(orig)); errors.Is(err, os.ErrNotExist) {
					m.log.Warn("restoring a volume whose removal did not commit", "volume", orig)
					if err := os.Rename(p, m.volumeDir(orig)); err != nil {
						return err
					}
					continue
				}
			}
			m.log.Info("deleting a removed volume's data", "volume", orig)
			if err := removeAll(p); err != nil {
				return err
			}
		default:
			if _, found := slices.BinarySearch(names, name); found {
				continue
			}
			// An interrupted create: its _data was never handed out.
			if isEmptyDir(filepath.Join(p, "_data")) {
				m.log.Info("deleting a volume directory without a record", "volume", name)
				if err := removeAll(p); err != nil {
					return err
				}
			} else {
				m.log.Warn("a volume directory has data but no record; leaving it", "dir", p)
			}
		}
	}
	return nil
}

func isEmptyDir(p string) bool {
	entries, err := os.ReadDir(p)
	return err == nil && len(entries) == 0 || errors.Is(err, os.ErrNotExist)
}

func (m *Manager) volumeDir(name string) string { return filepath.Join(m.dir, name) }

// Mountpoint is the host directory containers bind-mount for v.
func (m *Manager) Mountpoint(v store.Volume) string {
	return filepath.Join(m.volumeDir(v.Name), "_data")
}

// Get returns the volume called name. A missing one wraps
// errdefs.ErrNotFound with docker's message ("get NAME: no such volume").
func (m *Manager) Get(ctx context.Context, name string) (store.Volume, error) {
	var v store.Volume
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		v, err = get(tx, name)
		return err
	})
	return v, err
}

func get(tx *store.Tx, name string) (store.Volume, error) {
	if name == "" || !store.Has(tx, store.Volumes, name) {
		return store.Volume{}, &notFound{name: name}
	}
	return store.Get[store.Volume](tx, store.Volumes, name)
}

// notFound is docker's error for a missing volume; it wraps
// errdefs.ErrNotFound.
type notFound struct{ name string }

func (e *notFound) Error() string { return fmt.Sprintf("get %s: no such volume", e.name) }
func (e *notFound) Unwrap() error { return errdefs.ErrNotFound }

// List returns every volume, by name.
func (m *Manager) List(ctx context.Context) ([]store.Volume, error) {
	var out []store.Volume
	err := m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Volumes, func(_ string, v store.Volume) error {
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// Users maps each volume that containers mount to their IDs (every
// container record, running or not): docker's "in use", the `dangling`
// filter and the RefCount of `system df`.
func (m *Manager) Users(ctx context.Context) (map[string][]string, error) {
	users := map[string][]string{}
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		users, err = usersOf(tx, "")
		return err
	})
	return users, err
}

// usersOf lists the containers mounting each volume (only volume name
// when it is not empty).
func usersOf(tx *store.Tx, name string) (map[string][]string, error) {
	users := map[string][]string{}
	err := store.ForEach(tx, store.Containers, func(id string, c store.Container) error {
		for _, mnt := range c.Mounts {
			if mnt.Volume == "" || name != "" && mnt.Volume != name {
				continue
			}
			if !slices.Contains(users[mnt.Volume], id) {
				users[mnt.Volume] = append(users[mnt.Volume], id)
			}
		}
		return nil
	})
	return users, err
}

// Size is the bytes v's files take (what `system df` and prune report);
// a volume whose directory is gone has 0.
func (m *Manager) Size(v store.Volume) (int64, error) {
	var size int64
	err := filepath.WalkDir(m.Mountpoint(v), func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	return size, err
}
