package engine

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/volume"
)

func (s *Server) volumeRoutes() {
	s.route("POST", "/volumes/create", s.createVolume)
	s.route("GET", "/volumes", s.listVolumes)
	s.route("GET", "/volumes/{name}", s.inspectVolume)
	s.route("DELETE", "/volumes/{name}", s.removeVolume)
	s.route("POST", "/volumes/prune", s.pruneVolumes)
}

// volumeView is a volume as the API shows it.
func (s *Server) volumeView(v store.Volume) volumetypes.Volume {
	return volumetypes.Volume{
		Name: v.Name, Driver: v.Driver, Labels: v.Labels, Options: v.Options,
		Mountpoint: s.volumes.Mountpoint(v), Scope: "local",
		CreatedAt: v.CreatedAt.Local().Format(time.RFC3339),
	}
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req volumetypes.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil {
		return errorf(errdefs.ErrNotImplemented, "cluster volumes are not supported: berth is not a swarm manager")
	}
	existed := false
	if req.Name != "" {
		_, err := s.volumes.Get(r.Context(), req.Name)
		existed = err == nil
	}
	v, err := s.volumes.Create(r.Context(), volume.CreateRequest{Name: req.Name, Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts})
	if err != nil {
		return err
	}
	if !existed {
		s.emit("volume", "create", v.Name, map[string]string{"driver": v.Driver})
	}
	return writeJSON(w, http.StatusCreated, s.volumeView(v))
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "dangling", "name", "label", "label!", "driver")
	if err != nil {
		return err
	}
	dangling, err := danglingFilter(f)
	if err != nil {
		return err
	}
	vols, err := s.volumes.List(r.Context())
	if err != nil {
		return err
	}
	users, err := s.volumes.Users(r.Context())
	if err != nil {
		return err
	}
	out := volumetypes.ListResponse{Volumes: []volumetypes.Volume{}}
	for _, v := range vols {
		if dangling != nil && *dangling != (len(users[v.Name]) == 0) {
			continue
		}
		if !regexpMatch(f, "name", v.Name) || !regexpMatch(f, "driver", v.Driver) || !f.MatchLabels("label", v.Labels) {
			continue
		}
		out.Volumes = append(out.Volumes, s.volumeView(v))
	}
	return writeJSON(w, http.StatusOK, out)
}

// danglingFilter reads `dangling` (true/1, false/0); nil: not given.
func danglingFilter(f filters) (*bool, error) {
	if !f.Has("dangling") {
		return nil, nil
	}
	var want *bool
	for _, v := range f["dangling"] {
		var b bool
		switch v {
		case "true", "1":
			b = true
		case "false", "0":
		default:
			return nil, errorf(errdefs.ErrInvalidArgument, "invalid filter 'dangling=%s'", v)
		}
		if want != nil && *want != b {
			return nil, errorf(errdefs.ErrInvalidArgument, "invalid filter 'dangling=%s'", v)
		}
		want = &b
	}
	return want, nil
}

// regexpMatch is docker's filters.Match: value matches one of key's
// values as a regular expression (or contains it literally when it is
// no valid expression); true when key is not given.
func regexpMatch(f filters, key, value string) bool {
	if !f.Has(key) {
		return true
	}
	for _, term := range f[key] {
		if term == value {
			return true
		}
		if re, err := regexp.Compile(term); err == nil && re.MatchString(value) {
			return true
		}
	}
	return false
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := s.volumes.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.volumeView(v))
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	_, getErr := s.volumes.Get(r.Context(), name)
	if err := s.volumes.Remove(r.Context(), name, boolValue(r, "force")); err != nil {
		return err
	}
	if getErr == nil {
		s.emit("volume", "destroy", name, map[string]string{"driver": volume.DriverLocal})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes removes the volumes no container uses: the anonymous ones
// only, unless all=true (docker 23+, API 1.42); clients of older APIs get
// their behaviour of removing every unused volume.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "label", "label!", "all")
	if err != nil {
		return err
	}
	all := versionBefore(r, "1.42")
	for _, v := range f["all"] {
		switch v {
		case "true", "1":
			all = true
		case "false", "0":
		default:
			return errorf(errdefs.ErrInvalidArgument, "invalid filter 'all=%s': invalid value", v)
		}
	}
	vols, err := s.volumes.List(r.Context())
	if err != nil {
		return err
	}
	users, err := s.volumes.Users(r.Context())
	if err != nil {
		return err
	}
	report := volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vols {
		if len(users[v.Name]) > 0 || !all && !v.Anonymous || !f.MatchLabels("label", v.Labels) {
			continue
		}
		size, _ := s.volumes.Size(v)
		if err := s.volumes.Remove(r.Context(), v.Name, false); err != nil {
			// Taken into use meanwhile: not unused any more.
			s.log.Debug("prune: keeping a volume", "volume", v.Name, "error", err)
			continue
		}
		s.emit("volume", "destroy", v.Name, map[string]string{"driver": v.Driver})
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		report.SpaceReclaimed += uint64(size)
	}
	sort.Strings(report.VolumesDeleted)
	s.emit("volume", "prune", "", map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)})
	return writeJSON(w, http.StatusOK, report)
}
