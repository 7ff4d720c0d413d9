package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/berth-runtime/berth/compat/engine"
	"github.com/berth-runtime/berth/config"
)

// serveDocker is the docker door: the Engine API on cfg.DockerListenPath()
// (and on docker.tcp when set). It closes listening once the sockets
// accept connections, serves until ctx is cancelled, then gives requests
// in flight shutdownGrace (streams such as logs -f and attach are cut).
func serveDocker(ctx context.Context, cfg config.Config, svc *Services, log *slog.Logger, listening chan<- struct{}) error {
	runtimes := map[string]string{}
	for name, rt := range cfg.Runtimes {
		runtimes[name] = rt.Path
	}
	srv := engine.New(engine.Options{
		Config: engine.Config{
			Root: cfg.Root, State: cfg.State,
			DefaultBridge: cfg.Docker.Bridge, DefaultSubnet: cfg.Docker.Subnet,
			CgroupDriver: cfg.CgroupDriver, DefaultRuntime: cfg.DefaultRuntime, Runtimes: runtimes,
			Endpoints: map[string]string{"cri": "unix://" + cfg.ListenPath(), "docker": "unix://" + cfg.DockerListenPath()},
			Mirrors:   cfg.Registry.Mirrors, InsecureRegistries: cfg.Registry.Insecure,
		},
		Images: svc.Images, Pods: svc.Pods, Containers: svc.Containers, Networks: svc.Networks,
		Volumes: svc.Volumes, Events: svc.Events, Logger: log,
	})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	listeners := []net.Listener{}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	lis, err := listenUnix(cfg.DockerListenPath(), cfg.SocketGroup)
	if err != nil {
		return fmt.Errorf("engine api: %w", err)
	}
	defer os.Remove(cfg.DockerListenPath())
	listeners = append(listeners, lis)
	if cfg.Docker.TCP != "" {
		tcp, err := net.Listen("tcp", cfg.Docker.TCP)
		if err != nil {
			return fmt.Errorf("engine api: %w", err)
		}
		listeners = append(listeners, tcp)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	serveErr := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("engine api: %w", err)
			}
		}()
	}
	close(listening)
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	return failed
}
