package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/cri"
	"github.com/berth-runtime/berth/streaming"
)

// serveCRI is the CRI door: the gRPC socket at cfg.ListenPath() and the
// streaming server its Exec, Attach and PortForward answers point at. It
// sends the streaming URL on listening once both accept connections,
// serves until ctx is cancelled, then stops the streaming server and the
// RPCs, which get shutdownGrace to finish. It returns an error only if a
// server failed.
func serveCRI(ctx context.Context, cfg config.Config, svc *Services, log *slog.Logger, listening chan<- string) error {
	streams, err := streaming.New(streaming.Options{
		Address: cfg.Streaming.Address, Containers: svc.Containers, Sandboxes: svc.Pods,
		Logger: log.With("service", "streaming"),
	})
	if err != nil {
		return err
	}
	defer streams.Close()

	srv := cri.New(cri.Options{
		Config:         criConfig(cfg),
		Images:         svc.Images,
		Sandboxes:      svc.Pods,
		Containers:     svc.Containers,
		Files:          svc.Containers,
		Stats:          svc.Pods,
		Events:         svc.Events,
		RuntimeReady:   svc.RuntimeReady,
		NetworkReady:   svc.Networks.Ready,
		Streaming:      streams,
		UserNamespaces: svc.UserNamespaces,
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

	serveErr := make(chan error, 2)
	go func() { serveErr <- g.Serve(lis) }()
	go func() {
		if err := streams.Serve(); err != nil {
			serveErr <- fmt.Errorf("streaming: %w", err)
		}
	}()
	listening <- streams.URL()

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-serveErr:
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
	return failed
}

// criConfig is the part of berthd's config the CRI server answers with.
func criConfig(cfg config.Config) cri.Config {
	handlers := make([]string, 0, len(cfg.Runtimes))
	for name := range cfg.Runtimes {
		handlers = append(handlers, name)
	}
	slices.Sort(handlers)
	return cri.Config{
		RuntimeHandlers: handlers,
		SystemdCgroup:   cfg.CgroupDriver == "systemd",
		StateDir:        cfg.State,
		Info:            cfg,
	}
}
