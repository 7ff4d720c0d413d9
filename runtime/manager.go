package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/namereg"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/store"
)

// Images is what the container manager needs of the image service: an
// image by name, its config (the process defaults) and the directories of
// its unpacked layers, lowest last.
type Images interface {
	Get(ctx context.Context, name string) (store.Image, error)
	Config(img store.Image) (*v1.ConfigFile, error)
	SnapshotDirs(ctx context.Context, img store.Image) ([]string, error)
}

// Options configure a Manager.
type Options struct {
	DB       *store.DB
	Images   Images
	Launcher *Launcher
	Host     oci.Host
	// RootDir holds containers/<id>/{upper,work}; StateDir holds
	// containers/<id> bundles with the rootfs mount point.
	RootDir, StateDir string
	SystemdCgroup     bool
	Logger            *slog.Logger
	// Events receives the containers' life-cycle events (may be nil).
	Events *events.Bus
	// Processes, when set, runs the containers' processes instead of
	// Launcher: unit tests put a fake here (runtimetest.Processes) and
	// leave Launcher nil, which leaves attach, exec, log reopening and
	// resource updates unavailable.
	Processes Processes
	// Mounter makes the containers' mounts (nil: rootfs.Host, the real ones).
	Mounter Mounter
}

// Manager runs containers.
type Manager struct {
	db       *store.DB
	images   Images
	launcher Processes
	shims    *Launcher // nil on fakes; see Options.Processes
	mounts   Mounter
	host     oci.Host
	rootDir  string
	stateDir string
	systemd  bool
	log      *slog.Logger
	names    *namereg.Registry
	locks    sync.Map // id → *sync.Mutex
	events   *events.Bus
	changes  changes
	// dropped remembers which unsupported resources were logged, so each
	// is warned about once per daemon start.
	dropped sync.Map

	// watchers end when berthd stops; exits found later are read from
	// the shims' exit files at the next start.
	watchCtx  context.Context
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
}

// NewManager returns a Manager. The caller registers ImageRoots with the
// image service, so that the layers containers use are not collected.
func NewManager(o Options) (*Manager, error) {
	m := &Manager{
		db: o.DB, images: o.Images, shims: o.Launcher, mounts: o.Mounter, host: o.Host,
		rootDir: filepath.Join(o.RootDir, "containers"), stateDir: filepath.Join(o.StateDir, "containers"),
		systemd: o.SystemdCgroup, log: o.Logger, names: namereg.New(), events: o.Events,
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	switch {
	case o.Processes != nil:
		m.launcher = o.Processes
	case o.Launcher != nil:
		m.launcher = o.Launcher
	default:
		return nil, fmt.Errorf("runtime: a Launcher or Processes is required: %w", errdefs.ErrInvalidArgument)
	}
	if m.mounts == nil {
		m.mounts = rootfs.Host{}
	}
	for _, d := range []string{m.rootDir, m.stateDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	m.watchCtx, m.stopWatch = context.WithCancel(context.Background())
	return m, nil
}

// ImageRoots lists what the containers in tx use of the image store: the
// layers under their writable layers and of the images mounted as volumes
// (garbage-collection roots), and the images they were made from (which
// an untag must not remove). The daemon registers it with the image
// service (imageservice.RootsFunc).
func (m *Manager) ImageRoots(tx *store.Tx) (chainIDs, images []digest.Digest, err error) {
	err = store.ForEach(tx, store.Containers, func(_ string, c store.Container) error {
		chainIDs = append(chainIDs, c.ChainID)
		chainIDs = append(chainIDs, c.VolumeChainIDs...)
		images = append(images, c.ImageID)
		return nil
	})
	return chainIDs, images, err
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
	if err == nil {
		m.changed(id)
	}
	return c, err
}

func (m *Manager) rootfs(c store.Container) string { return filepath.Join(c.Bundle, "rootfs") }

func (m *Manager) publish(kind events.Kind, c store.Container) {
	m.events.Publish(events.Event{
		Kind: kind, ID: c.ID, SandboxID: c.SandboxID, Origin: string(c.Origin),
		Name: c.Name, Key: c.Key, Attempt: c.Attempt, Image: c.Image, Labels: c.Labels, ExitCode: c.ExitCode,
	})
}

// supportedResources is r without what this host's cgroups cannot apply
// (see oci.Supported), warning once per daemon start about each dropped
// kind.
func (m *Manager) supportedResources(r *specs.LinuxResources) *specs.LinuxResources {
	out, dropped := oci.Supported(r, m.host)
	for _, what := range dropped {
		if _, seen := m.dropped.LoadOrStore(what, true); !seen {
			m.log.Warn("this host's cgroups cannot apply a requested resource limit; it is ignored from now on", "resource", what)
		}
	}
	return out
}
