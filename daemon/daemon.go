// Package daemon wires berthd together: it takes the config, locks the
// root and state directories, opens the store and the services, serves the
// CRI socket and shuts it all down in order. It holds wiring, not logic.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/cri"
	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/streaming"
)

// shutdownGrace is how long running RPCs get to finish on SIGTERM.
const shutdownGrace = 10 * time.Second

// Run serves until ctx is cancelled, then shuts down cleanly. ready, if not
// nil, is closed once the socket accepts connections.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- struct{}) error {
	for _, dir := range []string{cfg.Root, cfg.State, filepath.Dir(cfg.ListenPath())} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
	}
	unlock, err := lockDirs(cfg.Root, cfg.State)
	if err != nil {
		return err
	}
	defer unlock()

	db, err := store.Open(filepath.Join(cfg.Root, "meta.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	resolver, err := remote.NewResolver(remote.Config{
		Mirrors:      cfg.Registry.Mirrors,
		Insecure:     cfg.Registry.Insecure,
		DockerConfig: cfg.Registry.ConfigPath,
		UserAgent:    "berth/" + version.Version,
	})
	if err != nil {
		return fmt.Errorf("registry config: %w", err)
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
		return err
	}
	svc, err := startServices(ctx, cfg, db, images, log)
	if err != nil {
		return err
	}
	defer svc.containers.Close()

	streams, err := streaming.New(streaming.Options{
		Address: cfg.Streaming.Address, Containers: svc.containers, Sandboxes: svc.sandboxes,
		Logger: log.With("service", "streaming"),
	})
	if err != nil {
		return err
	}
	defer streams.Close()

	srv := cri.New(cri.Options{
		Config:     cfg,
		Images:     images,
		Sandboxes:  svc.sandboxes,
		Containers: svc.containers,
		Events:     svc.events,
		RuntimeReady: func() error {
			rt := cfg.Runtimes[cfg.DefaultRuntime]
			if _, err := exec.LookPath(rt.Path); err != nil {
				return fmt.Errorf("OCI runtime %q (%s) not found: %w", cfg.DefaultRuntime, rt.Path, err)
			}
			return nil
		},
		NetworkReady:   svc.network.Ready,
		Streaming:      streams,
		UserNamespaces: svc.userns,
	})
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(cri.UnaryInterceptor(log)),
		grpc.ChainStreamInterceptor(cri.StreamInterceptor(log)),
		grpc.MaxRecvMsgSize(16<<20),
		grpc.MaxSendMsgSize(16<<20),
	)
	srv.Register(g)

	lis, err := listenUnix(cfg.ListenPath(), cfg.SocketGroup)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.ListenPath())

	serveErr := make(chan error, 3)
	go func() { serveErr <- g.Serve(lis) }()
	go func() {
		if err := streams.Serve(); err != nil {
			serveErr <- fmt.Errorf("streaming: %w", err)
		}
	}()

	var metricsSrv *http.Server
	if cfg.MetricsAddress != "" {
		metricsSrv = &http.Server{Addr: cfg.MetricsAddress, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}
	log.Info("berthd serving", "version", version.Version, "cri", "unix://"+cfg.ListenPath(), "root", cfg.Root, "state", cfg.State, "metrics", cfg.MetricsAddress, "streaming", streams.URL())
	if ready != nil {
		close(ready)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		return err
	}
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	streams.Close()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		log.Warn("RPCs still running after the grace period; stopping them")
		g.Stop()
	}
	return nil
}

// listenUnix replaces a stale socket (the directory locks prove no other
// berthd owns it) and listens with mode 0660.
func listenUnix(path, group string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	gid := 0
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			lis.Close()
			return nil, fmt.Errorf("socket_group: %w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		lis.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, err
	}
	return lis, nil
}
