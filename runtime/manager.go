package runtime

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/namereg"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
)

// Options configure a Manager.
type Options struct {
	DB       *store.DB
	Images   *imageservice.Service
	Launcher *Launcher
	Host     oci.Host
	// RootDir holds containers/<id>/{upper,work}; StateDir holds
	// containers/<id> bundles with the rootfs mount point.
	RootDir, StateDir string
	SystemdCgroup     bool
	Logger            *slog.Logger
	// Events receives the containers' life-cycle events (may be nil).
	Events *events.Bus
}

// Manager runs containers.
type Manager struct {
	db       *store.DB
	images   *imageservice.Service
	launcher *Launcher
	host     oci.Host
	rootDir  string
	stateDir string
	systemd  bool
	log      *slog.Logger
	names    *namereg.Registry
	locks    sync.Map // id → *sync.Mutex
	events   *events.Bus

	// watchers end when berthd stops; exits found later are read from
	// the shims' exit files at the next start.
	watchCtx  context.Context
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
}

// NewManager returns a Manager and registers the containers' layers as GC
// roots of the image service.
func NewManager(o Options) (*Manager, error) {
	m := &Manager{
		db: o.DB, images: o.Images, launcher: o.Launcher, host: o.Host,
		rootDir: filepath.Join(o.RootDir, "containers"), stateDir: filepath.Join(o.StateDir, "containers"),
		systemd: o.SystemdCgroup, log: o.Logger, names: namereg.New(), events: o.Events,
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	for _, d := range []string{m.rootDir, m.stateDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	m.watchCtx, m.stopWatch = context.WithCancel(context.Background())
	o.Images.AddRoots(func(tx *store.Tx) ([]digest.Digest, error) {
		var ids []digest.Digest
		err := store.ForEach(tx, store.Containers, func(_ string, c store.Container) error {
			ids = append(ids, c.ChainID)
			ids = append(ids, c.VolumeChainIDs...)
			return nil
		})
		return ids, err
	})
	return m, nil
}

// Close stops watching containers (they keep running under their shims).
func (m *Manager) Close() {
	m.stopWatch()
	m.watchers.Wait()
}

// Get finds a container by id, name (its Key in the name index) or
// unique id prefix. None wraps errdefs.ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (store.Container, error) {
	var c store.Container
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		c, err = store.Lookup[store.Container](tx, store.Containers, store.ContainerNames, id)
		return err
	})
	return c, err
}

// List returns every container.
func (m *Manager) List(ctx context.Context) ([]store.Container, error) {
	var out []store.Container
	err := m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Containers, func(_ string, c store.Container) error {
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

func (m *Manager) lock(id string) func() {
	mu, _ := m.locks.LoadOrStore(id, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

func (m *Manager) update(id string, fn func(*store.Container)) (store.Container, error) {
	var c store.Container
	err := m.db.Update(func(tx *store.Tx) error {
		var err error
		c, err = store.Get[store.Container](tx, store.Containers, id)
		if err != nil {
			return err
		}
		fn(&c)
		return store.Put(tx, store.Containers, id, c)
	})
	return c, err
}

func (m *Manager) rootfs(c store.Container) string { return filepath.Join(c.Bundle, "rootfs") }

func (m *Manager) publish(kind events.Kind, c store.Container) {
	m.events.Publish(events.Event{Kind: kind, ID: c.ID, SandboxID: c.SandboxID})
}
