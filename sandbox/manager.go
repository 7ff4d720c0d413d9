// Package sandbox owns pod sandboxes: the pinned network namespace and its
// CNI attachment, the pod's hostname/hosts/resolv.conf, and the infra
// process that holds the namespaces the pod's containers share. The infra
// process is berth's own (berth-shim in pause mode, from a tiny read-only
// root file system berth makes itself), so a pod starts without pulling any
// image.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/namereg"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
)

// Network is what the manager needs of the pod network.
type Network interface {
	Setup(ctx context.Context, pod cni.PodNetwork) (cni.Result, error)
	Teardown(ctx context.Context, pod cni.PodNetwork) error
	// Detach takes the pod off pod.Network only.
	Detach(ctx context.Context, pod cni.PodNetwork) error
	// Ready says why the network cannot take pods yet (nil: it can).
	Ready() error
}

// Containers is what the manager needs of the container service: a pod's
// containers are stopped before it stops and removed before it goes, and
// their figures are part of the pod's stats. runtime.Manager implements
// it.
type Containers interface {
	Get(ctx context.Context, id string) (store.Container, error)
	List(ctx context.Context) ([]store.Container, error)
	Match(ctx context.Context, f runtime.ContainerFilter) ([]store.Container, error)
	Stop(ctx context.Context, id string, timeout time.Duration, stopSignal string) error
	Remove(ctx context.Context, id string) error
	Stats(ctx context.Context, req runtime.StatsRequest) []runtime.ContainerStats
}

// NetworkWait is how long RunPodSandbox waits for the pod network to
// become ready (a CNI config to appear) before it gives up with the
// reason; the kubelet's own timeout is two minutes.
const NetworkWait = 30 * time.Second

// Options configure a Manager.
type Options struct {
	DB       *store.DB
	Network  Network
	Launcher *runtime.Launcher
	// Containers are the pods' containers: stopped and removed with
	// their pod, and their figures in the pod's stats.
	Containers Containers
	Host       oci.Host
	// StateDir is berthd's state directory: sandboxes/, netns/, userns/
	// and pause/ go below it.
	StateDir string
	// ShimBinary is copied into the infra root file system as /pause.
	ShimBinary string
	// SystemdCgroup selects the systemd cgroup driver.
	SystemdCgroup bool
	// HostResolvConf is the resolv.conf pods inherit without DNS config.
	HostResolvConf string
	Logger         *slog.Logger
	// Events receives the sandboxes' life-cycle events (may be nil).
	Events *events.Bus
}

// Manager runs pod sandboxes.
type Manager struct {
	db          *store.DB
	net         Network
	launcher    *runtime.Launcher
	containers  Containers
	host        oci.Host
	dir         string
	netnsDir    string
	usernsDir   string
	pauseRootfs string
	// holder is the program userns clones into a pod's new user
	// namespace to create it: the shim in pause mode.
	holder     []string
	systemd    bool
	hostResolv string
	log        *slog.Logger
	names      *namereg.Registry
	locks      sync.Map // sandbox id → *sync.Mutex
	events     *events.Bus
}

// New prepares the directories and the infra root file system.
func New(o Options) (*Manager, error) {
	if o.Containers == nil {
		return nil, fmt.Errorf("sandbox.New needs the container service")
	}
	m := &Manager{
		db:          o.DB,
		net:         o.Network,
		launcher:    o.Launcher,
		containers:  o.Containers,
		host:        o.Host,
		dir:         filepath.Join(o.StateDir, "sandboxes"),
		netnsDir:    filepath.Join(o.StateDir, "netns"),
		usernsDir:   filepath.Join(o.StateDir, "userns"),
		holder:      []string{o.ShimBinary, "pause"},
		pauseRootfs: filepath.Join(o.StateDir, "pause"),
		systemd:     o.SystemdCgroup,
		hostResolv:  o.HostResolvConf,
		log:         o.Logger,
		names:       namereg.New(),
		events:      o.Events,
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.hostResolv == "" {
		m.hostResolv = "/etc/resolv.conf"
	}
	for _, d := range []string{m.dir, m.netnsDir, m.usernsDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	if err := m.preparePause(o.ShimBinary); err != nil {
		return nil, fmt.Errorf("preparing the infra root file system: %w", err)
	}
	return m, nil
}

// preparePause builds <state>/pause: the static shim binary as /pause and
// the mount points runc needs, shared read-only by every infra process.
func (m *Manager) preparePause(shimBinary string) error {
	for _, d := range []string{"dev", "proc", "sys", "etc"} {
		if err := os.MkdirAll(filepath.Join(m.pauseRootfs, d), 0o755); err != nil {
			return err
		}
	}
	src, err := os.Open(shimBinary)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := filepath.Join(m.pauseRootfs, ".pause.tmp")
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(m.pauseRootfs, "pause"))
}

func (m *Manager) lock(id string) func() {
	mu, _ := m.locks.LoadOrStore(id, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// Get finds a sandbox by id, name (its Key in the name index) or unique
// id prefix. None wraps errdefs.ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (store.Sandbox, error) {
	var sb store.Sandbox
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		sb, err = store.Lookup[store.Sandbox](tx, store.Sandboxes, store.SandboxNames, id)
		return err
	})
	return sb, err
}

// List returns every sandbox.
func (m *Manager) List(ctx context.Context) ([]store.Sandbox, error) {
	var out []store.Sandbox
	err := m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Sandboxes, func(_ string, sb store.Sandbox) error {
			out = append(out, sb)
			return nil
		})
	})
	return out, err
}

func (m *Manager) update(id string, fn func(*store.Sandbox)) (store.Sandbox, error) {
	var sb store.Sandbox
	err := m.db.Update(func(tx *store.Tx) error {
		var err error
		sb, err = store.Get[store.Sandbox](tx, store.Sandboxes, id)
		if err != nil {
			return err
		}
		fn(&sb)
		return store.Put(tx, store.Sandboxes, id, sb)
	})
	return sb, err
}

func (m *Manager) publish(kind events.Kind, sb store.Sandbox) {
	m.events.Publish(events.Event{Kind: kind, ID: sb.ID, SandboxID: sb.ID, Sandbox: true, Origin: string(sb.Origin)})
}

// UpdateResources records the pod-level resources and overhead (the
// CRI's UpdatePodSandboxResources: the kubelet has already resized the
// pod's cgroups; the record keeps in step). A nil argument keeps what is
// recorded.
func (m *Manager) UpdateResources(ctx context.Context, id string, resources, overhead *specs.LinuxResources) error {
	sb, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	_, err = m.update(sb.ID, func(s *store.Sandbox) {
		if resources != nil {
			s.Resources = resources
		}
		if overhead != nil {
			s.Overhead = overhead
		}
	})
	return err
}

// Filter selects sandboxes for both front doors' list calls. Its zero
// value selects every sandbox; each field set narrows it.
type Filter struct {
	// IDPrefix matches the start of the id (a full id only itself).
	IDPrefix string
	// Ready, when set, selects ready (true) or not-ready sandboxes.
	Ready *bool
	// Labels must all be present with these values.
	Labels map[string]string
	// Origin, when set, selects the sandboxes that front door made.
	Origin store.Origin
	// Made leaves out sandboxes still being made (never ready, never
	// stopped): a client listing them would see a pod that is not ready
	// yet as one that died (the kubelet's PLEG reports it so), as
	// containerd, which lists a sandbox once it is made, never shows.
	Made bool
}

// Matches reports whether f selects sb.
func (f Filter) Matches(sb store.Sandbox) bool {
	return strings.HasPrefix(sb.ID, f.IDPrefix) && (f.Ready == nil || sb.Ready() == *f.Ready) &&
		store.LabelsMatch(sb.Labels, f.Labels) && (f.Origin == "" || sb.Origin == f.Origin) &&
		(!f.Made || !sb.ReadyAt.IsZero() || !sb.StoppedAt.IsZero())
}

// Match returns the sandboxes f selects, in id order.
func (m *Manager) Match(ctx context.Context, f Filter) ([]store.Sandbox, error) {
	var out []store.Sandbox
	err := m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Sandboxes, func(_ string, sb store.Sandbox) error {
			if f.Matches(sb) {
				out = append(out, sb)
			}
			return nil
		})
	})
	return out, err
}
