// Package daemon wires berthd together: it takes the config, locks the
// root and state directories, opens the store, builds the services once
// (services.go) and serves them through each front door (cri.go: the CRI
// socket; docker.go: the Engine API), then shuts it all down in order. It holds wiring, not logic.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/store"
)

// shutdownGrace is how long running RPCs get to finish on SIGTERM.
const shutdownGrace = 10 * time.Second

// Run serves until ctx is cancelled, then shuts down cleanly. ready, if not
// nil, is closed once the socket accepts connections.
//
// It builds the services once (newServices) and hands them to each front
// door's serve function, which listens, serves until its context is
// cancelled and stops its servers. Shutdown goes: the metrics endpoint,
// the doors (streaming, then the RPCs), the container watchers, the store,
// the directory locks.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- struct{}) error {
	for _, dir := range []string{cfg.Root, cfg.State, filepath.Dir(cfg.ListenPath()), filepath.Dir(cfg.DockerListenPath())} {
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
	svc, err := newServices(ctx, cfg, db, reg, log)
	if err != nil {
		return err
	}
	defer svc.Close()

	// serveErr gets the metrics endpoint's error and the CRI door's
	// return, which is nil only after doorCtx is cancelled.
	doorCtx, stopDoors := context.WithCancel(context.Background())
	defer stopDoors()
	serveErr := make(chan error, 3)
	criDone := make(chan struct{})
	listening := make(chan string, 1)
	go func() {
		defer close(criDone)
		if err := serveCRI(doorCtx, cfg, svc, log, listening); err != nil {
			serveErr <- err
		}
	}()
	var streamingURL string
	select {
	case streamingURL = <-listening:
	case err := <-serveErr:
		return err
	}
	dockerDone := make(chan struct{})
	dockerListening := make(chan struct{})
	go func() {
		defer close(dockerDone)
		if err := serveDocker(doorCtx, cfg, svc, log.With("door", "docker"), dockerListening); err != nil {
			serveErr <- err
		}
	}()
	select {
	case <-dockerListening:
	case err := <-serveErr:
		stopDoors()
		<-criDone
		return err
	}

	var metricsSrv *http.Server
	if cfg.MetricsAddress != "" {
		metricsSrv = &http.Server{Addr: cfg.MetricsAddress, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}
	log.Info("berthd serving", "version", version.Version, "cri", "unix://"+cfg.ListenPath(), "docker", "unix://"+cfg.DockerListenPath(), "root", cfg.Root, "state", cfg.State, "metrics", cfg.MetricsAddress, "streaming", streamingURL)
	if ready != nil {
		close(ready)
	}

	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case failed = <-serveErr:
	}
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	stopDoors()
	<-criDone
	<-dockerDone
	return failed
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
