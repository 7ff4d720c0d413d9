// Package engine is berth's Docker Engine API door: an HTTP server that
// speaks the API of github.com/moby/moby/api (its types on the wire) to the
// docker CLI, docker-compose and the SDKs, and translates each request to
// the services the CRI door uses too (sandbox, runtime, imageservice, cni,
// volumes). It owns no state of its own beyond what a request needs in
// flight; the store keeps every object.
//
// The routes are grouped by object kind, one file each (containers,
// images, volumes, networks, exec, archive, system, events); each handler
// decodes the request into the API type, calls a service, and encodes the
// reply. Errors are Go errors wrapping internal/errdefs sentinels, turned
// into docker's JSON error and HTTP status in one place (writeError).
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/volume"
)

// The API versions served: the newest that github.com/moby/moby/api
// defines, and the oldest docker still accepts. Clients negotiate down
// from /_ping's API-Version header (docker CLI 28: 1.50, docker-py: 1.35+).
const (
	APIVersion    = "1.57"
	MinAPIVersion = "1.24"
)

// Config is what the door needs to know of the daemon.
type Config struct {
	// Root and State are the daemon's directories (reported by /info).
	Root, State string
	// Name is the host name /info reports.
	Name string
	// DefaultBridge and DefaultSubnet shape docker's "bridge" network.
	DefaultBridge, DefaultSubnet string
	// CgroupDriver and DefaultRuntime are reported by /info.
	CgroupDriver, DefaultRuntime string
	// Runtimes are the configured OCI runtimes by name (binary path).
	Runtimes map[string]string
	// Endpoints are the daemon's sockets, by door ("cri", "docker").
	Endpoints map[string]string
	// Mirrors (by registry host) and InsecureRegistries (hosts or CIDRs)
	// are the registry config, reported by /info.
	Mirrors            map[string][]string
	InsecureRegistries []string
}

// Options are the services the door translates to.
type Options struct {
	Config     Config
	Images     *imageservice.Service
	Pods       *sandbox.Manager
	Containers *runtime.Manager
	Networks   *cni.Manager
	Volumes    *volume.Manager
	Events     *events.Bus
	Logger     *slog.Logger
}

// Server serves the Engine API.
type Server struct {
	cfg        Config
	images     *imageservice.Service
	pods       *sandbox.Manager
	containers *runtime.Manager
	networks   *cni.Manager
	volumes    *volume.Manager
	events     *events.Bus
	log        *slog.Logger
	mux        *http.ServeMux
	started    time.Time
	// journal keeps recent docker events for /events (events.go).
	journal *journal
	// restarts carries out restart policies (restart.go); nil until Start.
	restarts *restarter
	// dns runs the user networks' DNS servers (dns.go).
	dns dnsRegistry
	// execs are the exec instances (exec.go).
	execs execs
	// attaching are the attaches waiting for exited containers to start
	// again (container_attach.go).
	attaching attachWaiters
}

// New builds the server; Handler serves it.
func New(o Options) *Server {
	s := &Server{
		cfg: o.Config, images: o.Images, pods: o.Pods, containers: o.Containers,
		networks: o.Networks, volumes: o.Volumes, events: o.Events, log: o.Logger, mux: http.NewServeMux(),
		started: time.Now(), journal: newJournal(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.systemRoutes()
	s.containerRoutes()
	s.imageRoutes()
	s.volumeRoutes()
	s.networkRoutes()
	s.execRoutes()
	s.archiveRoutes()
	s.eventRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(errdefs.ErrNotFound, "page not found"))
	})
	return s
}

// Start runs what the door does in the background (restart policies,
// health checks, per-network DNS) until ctx is cancelled.
func (s *Server) Start(ctx context.Context) error {
	if s.events != nil {
		untap := s.events.Tap(s.fromBus)
		context.AfterFunc(ctx, untap)
	}
	s.autoRemove(ctx)
	if err := s.ensureBridge(ctx); err != nil {
		// Containers fall back to the pod network (cniNetwork).
		s.log.Error("docker's bridge network", "error", err)
	}
	if err := s.startNetworkDNS(ctx); err != nil {
		s.log.Error("starting the networks' DNS servers", "error", err)
	}
	s.restartPolicies(ctx)
	s.healthChecks(ctx)
	return nil
}

// route registers h for a method and path pattern (net/http's syntax,
// without the version prefix, which the handler strips).
func (s *Server) route(method, pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(method+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/|$)`)

type versionKey struct{}

// Handler is the whole API: the version prefix is checked and stripped,
// every request is logged at debug, and unknown paths get docker's 404.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		begin := time.Now()
		version := APIVersion
		if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
			version = m[1]
			if versionLess(APIVersion, version) {
				writeMessage(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, APIVersion))
				return
			}
			if versionLess(version, MinAPIVersion) {
				writeMessage(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, MinAPIVersion))
				return
			}
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/v"+version)
			if r.URL.Path == "" {
				r.URL.Path = "/"
			}
			r.URL.RawPath = ""
		}
		r = r.WithContext(context.WithValue(r.Context(), versionKey{}, version))
		w.Header().Set("Api-Version", APIVersion)
		w.Header().Set("Server", "berth/"+berthVersion()+" (linux)")
		rec := &statusRecorder{ResponseWriter: w}
		s.mux.ServeHTTP(rec, r)
		s.log.Debug("engine api", "method", r.Method, "path", r.URL.Path, "version", version, "status", rec.status, "duration", time.Since(begin))
	})
}

// apiVersion is the API version the client asked for (the path prefix),
// else the newest.
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// versionBefore reports whether the request's API version is older than v:
// the replies of older versions keep fields newer ones dropped.
func versionBefore(r *http.Request, v string) bool { return versionLess(apiVersion(r), v) }

// versionLess compares "major.minor" versions.
func versionLess(a, b string) bool {
	amaj, amin := splitVersion(a)
	bmaj, bmin := splitVersion(b)
	return amaj < bmaj || amaj == bmaj && amin < bmin
}

func splitVersion(v string) (int, int) {
	maj, min, _ := strings.Cut(v, ".")
	a, _ := strconv.Atoi(maj)
	b, _ := strconv.Atoi(min)
	return a, b
}

// statusRecorder remembers the status for the request log, and still
// lets handlers hijack the connection and flush streams.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
