package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/userns"
	"github.com/berth-runtime/berth/store"
)

type services struct {
	events     *events.Bus
	network    *cni.Manager
	sandboxes  *sandbox.Manager
	containers *runtime.Manager
	// userns is why pods cannot have user namespaces here (nil: they can).
	userns error
}

// startServices builds the pod network, the launcher and the sandbox and
// container managers, then reconciles what a previous berthd left: the
// sandboxes first (their infra processes and networks), then the
// containers in them.
func startServices(ctx context.Context, cfg config.Config, db *store.DB, images *imageservice.Service, log *slog.Logger) (*services, error) {
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
	if err := sandboxes.Recover(ctx); err != nil {
		log.Error("recovering sandboxes", "error", err)
	}
	if err := containers.Recover(ctx); err != nil {
		log.Error("recovering containers", "error", err)
	}
	return &services{events: bus, network: network, sandboxes: sandboxes, containers: containers, userns: usernsErr}, nil
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
