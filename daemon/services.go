package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/userns"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/volume"
)

// Services are berth's services, built once by newServices and shared by
// every front door: the CRI server now, the Docker Engine API next. A door
// is an adapter over these; it owns no state of its own.
type Services struct {
	Images     *imageservice.Service
	Pods       *sandbox.Manager
	Containers *runtime.Manager
	Networks   *cni.Manager
	Volumes    *volume.Manager
	Events     *events.Bus
	// UserNamespaces is why pods cannot have user namespaces on this
	// host (nil: they can).
	UserNamespaces error

	// defaultRuntime is the configured default OCI runtime's name and
	// defaultRuntimePath its binary, looked up again by RuntimeReady:
	// it may be installed after berthd starts.
	defaultRuntime, defaultRuntimePath string
}

// RuntimeReady reports why containers cannot run (nil: they can): the
// default OCI runtime's binary is missing.
func (s *Services) RuntimeReady() error {
	if _, err := exec.LookPath(s.defaultRuntimePath); err != nil {
		return fmt.Errorf("OCI runtime %q (%s) not found: %w", s.defaultRuntime, s.defaultRuntimePath, err)
	}
	return nil
}

// Close stops watching the containers, which keep running under their
// shims.
func (s *Services) Close() { s.Containers.Close() }

// newServices builds the image service, the pod network, the launcher and
// the sandbox and container managers, then reconciles what a previous
// berthd left: the sandboxes first (their infra processes and networks),
// then the containers in them. Image pull metrics go to reg.
func newServices(ctx context.Context, cfg config.Config, db *store.DB, reg prometheus.Registerer, log *slog.Logger) (*Services, error) {
	resolver, err := remote.NewResolver(remote.Config{
		Mirrors:      cfg.Registry.Mirrors,
		Insecure:     cfg.Registry.Insecure,
		DockerConfig: cfg.Registry.ConfigPath,
		UserAgent:    "berth/" + version.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("registry config: %w", err)
	}
	images, err := imageservice.New(imageservice.Options{
		Root:                   cfg.Root,
		DB:                     db,
		Resolver:               resolver,
		MaxConcurrentDownloads: cfg.Image.MaxConcurrentDownloads,
		SyncLayers:             cfg.Image.SyncLayers,
		Metrics:                reg,
		Logger:                 log.With("service", "images"),
	})
	if err != nil {
		return nil, err
	}
	shimBin, err := findShim(cfg.ShimPath)
	if err != nil {
		return nil, err
	}
	systemd := cfg.CgroupDriver == "systemd"
	runtimes := map[string]*ocirt.Runtime{}
	for name, rt := range cfg.Runtimes {
		bin, err := exec.LookPath(rt.Path)
		if err != nil {
			// Reported by Status (RuntimeReady) for the default one;
			// a request naming a missing one fails when it runs.
			bin = rt.Path
		}
		runtimes[name] = &ocirt.Runtime{Binary: bin, Root: filepath.Join(cfg.State, "runtime", name), SystemdCgroup: systemd}
	}
	launcher, err := runtime.NewLauncher(runtime.LauncherOptions{ShimBinary: shimBin, SocketDir: filepath.Join(cfg.State, "s"), Runtimes: runtimes, Default: cfg.DefaultRuntime})
	if err != nil {
		return nil, err
	}
	network, err := cni.NewManager(cni.Options{
		ConfDir:  cfg.CNI.ConfDir,
		BinDirs:  cfg.CNI.BinDirs,
		CacheDir: filepath.Join(cfg.State, "cni", "cache"),
		// User-defined networks (the docker door's) persist with the images.
		NetworkDir: filepath.Join(cfg.Root, "networks"),
		Default: cni.DefaultConfig{
			Bridge:  cfg.CNI.DefaultBridge,
			Subnet:  cfg.CNI.DefaultSubnet,
			DataDir: filepath.Join(cfg.State, "cni", "ipam"),
		},
	})
	if err != nil {
		return nil, err
	}
	if wrote, err := network.EnsureDefaultConfig(); err != nil {
		log.Warn("writing the default pod network config", "error", err)
	} else if wrote {
		log.Info("wrote the default pod network config", "dir", cfg.CNI.ConfDir, "subnet", cfg.CNI.DefaultSubnet)
	}
	host := oci.ReadHost()
	bus := events.NewBus()
	containers, err := runtime.NewManager(runtime.Options{
		DB: db, Images: images, Launcher: launcher, Host: host, RootDir: cfg.Root, StateDir: cfg.State,
		SystemdCgroup: systemd, Logger: log.With("service", "containers"), Events: bus,
	})
	if err != nil {
		return nil, err
	}
	images.AddRoots(func(tx *store.Tx) (imageservice.Roots, error) {
		chains, ids, err := containers.ImageRoots(tx)
		if err != nil {
			return imageservice.Roots{}, err
		}
		users, err := containers.ImageUsers(tx)
		r := imageservice.Roots{ChainIDs: chains, Images: ids}
		for _, u := range users {
			r.Users = append(r.Users, imageservice.ImageUser{Image: u.Image, Container: u.Container, Running: u.Running})
		}
		return r, err
	})
	sandboxes, err := sandbox.New(sandbox.Options{
		DB: db, Network: network, Launcher: launcher, Containers: containers, Host: host, StateDir: cfg.State,
		ShimBinary: shimBin, SystemdCgroup: systemd, Logger: log.With("service", "sandboxes"), Events: bus,
	})
	if err != nil {
		return nil, err
	}
	// Pods' user namespaces need idmapped mounts of the layers (root), of
	// the pods' files (state) and of tmpfs, the pods' /dev/shm (Linux 6.3+;
	// the host's /dev/shm stands for it).
	usernsErr := userns.Probe([]string{shimBin, "pause"}, cfg.Root, cfg.State, "/dev/shm")
	if usernsErr != nil {
		log.Info("pods cannot have user namespaces", "reason", usernsErr)
	}
	volumes, err := volume.New(volume.Options{DB: db, Root: cfg.Root, Logger: log.With("service", "volumes")})
	if err != nil {
		return nil, err
	}
	if err := sandboxes.Recover(ctx); err != nil {
		log.Error("recovering sandboxes", "error", err)
	}
	if err := containers.Recover(ctx); err != nil {
		log.Error("recovering containers", "error", err)
	}
	return &Services{
		Images: images, Pods: sandboxes, Containers: containers, Networks: network, Volumes: volumes, Events: bus, UserNamespaces: usernsErr,
		defaultRuntime: cfg.DefaultRuntime, defaultRuntimePath: cfg.Runtimes[cfg.DefaultRuntime].Path,
	}, nil
}

// findShim locates berth-shim: the configured path, beside berthd, or PATH.
func findShim(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "berth-shim")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("berth-shim")
	if err != nil {
		return "", fmt.Errorf("berth-shim not found beside berthd or in PATH (set shim_path): %w", err)
	}
	return p, nil
}
