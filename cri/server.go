// Package cri is berth's gRPC CRI server: thin adapters that validate a
// request, call the services, and convert the result. Errors are mapped to
// gRPC codes once, in the interceptor.
package cri

import (
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/sandbox"
)

// Checker reports whether a part the runtime depends on is ready; a
// non-nil error is the reason it is not.
type Checker func() error

// Server serves the CRI RuntimeService and ImageService. RPCs not built
// yet answer Unimplemented through the embedded types, never a fake success.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg        config.Config
	images     *imageservice.Service
	sandboxes  *sandbox.Manager
	containers *runtime.Manager
	events     *events.Bus
	// eventResponses are built once per event for all subscribers.
	eventResponses eventResponses
	runtimeReady   Checker
	networkReady   Checker
	streams        Streamer
	userns         error
	// cpuRates keeps the previous CPU sample per container and pod, for
	// usage_nano_cores (stats.go); its zero value is ready.
	cpuRates cgroupstats.Rates
}

// Options wire a Server.
type Options struct {
	Config       config.Config
	Images       *imageservice.Service
	Sandboxes    *sandbox.Manager
	Containers   *runtime.Manager
	Events       *events.Bus
	RuntimeReady Checker
	NetworkReady Checker
	// Streaming serves Exec, Attach and PortForward; nil: they fail
	// with Unavailable.
	Streaming Streamer
	// UserNamespaces is why pods cannot have user namespaces on this
	// host; nil: they can.
	UserNamespaces error
}

// New returns a Server.
func New(opts Options) *Server {
	return &Server{
		cfg:          opts.Config,
		images:       opts.Images,
		sandboxes:    opts.Sandboxes,
		containers:   opts.Containers,
		events:       opts.Events,
		runtimeReady: opts.RuntimeReady,
		networkReady: opts.NetworkReady,
		streams:      opts.Streaming,
		userns:       opts.UserNamespaces,
	}
}

// Register adds both CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}
