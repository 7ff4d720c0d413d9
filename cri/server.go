// Package cri is berth's gRPC CRI server: thin adapters that validate a
// request, call the services, and convert the result. Errors are mapped to
// gRPC codes once, in the interceptor.
package cri

import (
	"context"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
)

// Config is the part of berthd's config the CRI server answers with; the
// daemon fills it.
type Config struct {
	// RuntimeHandlers are the configured OCI runtimes' names, sorted:
	// the CRI's runtime handlers.
	RuntimeHandlers []string
	// SystemdCgroup says the cgroup driver is systemd (RuntimeConfig).
	SystemdCgroup bool
	// StateDir is reported as "stateDir" in Status's verbose info, where
	// tools (critest) look for the directory of the containers' root file
	// systems.
	StateDir string
	// Info is shown, as JSON, as the config in Status's verbose info:
	// berthd's whole config.
	Info any
}

// The services the server uses, declared here by what it calls, so that a
// handler's test can hand it a fake.

// Pods is what the server needs of the pod service (sandbox.Manager).
type Pods interface {
	Run(ctx context.Context, req sandbox.RunRequest) (string, error)
	Get(ctx context.Context, id string) (store.Sandbox, error)
	Match(ctx context.Context, f sandbox.Filter) ([]store.Sandbox, error)
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	UpdateResources(ctx context.Context, id string, resources, overhead *specs.LinuxResources) error
}

// Containers is what the server needs of the container service
// (runtime.Manager) for the containers' life cycle.
type Containers interface {
	Create(ctx context.Context, req runtime.CreateRequest) (string, error)
	Get(ctx context.Context, id string) (store.Container, error)
	Match(ctx context.Context, f runtime.ContainerFilter) ([]store.Container, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration, stopSignal string) error
	Remove(ctx context.Context, id string) error
	UpdateResources(ctx context.Context, id string, res *specs.LinuxResources) error
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (runtime.ExecResult, error)
}

// ContainerFiles is what the server needs of the containers' files on the
// host (runtime.Manager): their logs and writable layers.
type ContainerFiles interface {
	ReopenLog(ctx context.Context, id string) error
	WritableLayersUsage() (runtime.LayersUsage, error)
}

// Images is what the server needs of the image service.
type Images interface {
	Pull(ctx context.Context, name string, opts imageservice.PullOptions) (store.Image, error)
	Get(ctx context.Context, name string) (store.Image, error)
	List(ctx context.Context, filter string) ([]store.Image, error)
	Remove(ctx context.Context, name string) error
	Config(img store.Image) (*v1.ConfigFile, error)
	SnapshotDirs(ctx context.Context, img store.Image) ([]string, error)
	Usage(ctx context.Context) (imageservice.FsUsage, error)
}

// Events is the stream of life-cycle events GetContainerEvents relays.
type Events interface {
	Subscribe() *events.Subscription
}

// Stats reads the figures of containers and pods (sandbox/stats.go);
// rates is the server's previous CPU sample per container and pod.
type Stats interface {
	ContainerStats(ctx context.Context, id string, rates *cgroupstats.Rates) (runtime.ContainerStats, error)
	ListContainerStats(ctx context.Context, cs []store.Container, rates *cgroupstats.Rates) ([]runtime.ContainerStats, error)
	PodStats(ctx context.Context, sbs []store.Sandbox, rates *cgroupstats.Rates) ([]sandbox.PodStats, error)
	PodMetrics(ctx context.Context, sbs []store.Sandbox) ([]sandbox.PodStats, error)
}

// Checker reports whether a part the runtime depends on is ready; a
// non-nil error is the reason it is not.
type Checker func() error

// Server serves the CRI RuntimeService and ImageService. RPCs not built
// yet answer Unimplemented through the embedded types, never a fake success.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg        Config
	images     Images
	sandboxes  Pods
	containers Containers
	files      ContainerFiles
	stats      Stats
	events     Events
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
	Config       Config
	Images       Images
	Sandboxes    Pods
	Containers   Containers
	Files        ContainerFiles
	Stats        Stats
	Events       Events
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
		files:        opts.Files,
		stats:        opts.Stats,
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
