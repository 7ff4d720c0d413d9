package engine

import (
	"net/http"
	"os"
	goruntime "runtime"

	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/version"
)

func berthVersion() string { return version.Version }

func (s *Server) systemRoutes() {
	s.route("GET", "/_ping", s.ping)
	s.route("HEAD", "/_ping", s.ping)
	s.route("GET", "/version", s.version)
	s.route("GET", "/info", s.getInfo)
	s.route("GET", "/system/df", s.systemDF)
}

// ping answers the CLI's first call: the API version it negotiates down
// from, and the builder it should use (1: the classic POST /build, which
// berth serves; BuildKit's session API it does not).
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write([]byte("OK"))
	}
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	kernel := ""
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Release[:])
	}
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       berthVersion(),
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		GoVersion:     goruntime.Version(),
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		KernelVersion: kernel,
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: berthVersion(),
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "KernelVersion": kernel, "GoVersion": goruntime.Version()},
		}},
	}
	return writeJSON(w, http.StatusOK, v)
}

// hostname is the name /info reports: the configured one, else the host's.
func (s *Server) hostname() string {
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	h, _ := os.Hostname()
	return h
}
