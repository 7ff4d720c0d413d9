package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Image names hold slashes and colons (127.0.0.1:5000/busybox:latest), so
// the routes with a name take the rest of the path and split the action
// off its end, as docker's {name:.*} routes do.
func (s *Server) imageRoutes() {
	s.route("POST", "/images/create", s.imageCreate)
	s.route("GET", "/images/json", s.imageList)
	s.route("GET", "/images/search", s.imageSearch)
	s.route("GET", "/images/get", s.imageSaveNames)
	s.route("POST", "/images/load", s.imageLoad)
	s.route("POST", "/images/prune", s.imagePrune)
	s.route("GET", "/images/{rest...}", s.imageByName(map[string]imageHandler{
		"json": s.imageInspect, "history": s.imageHistory, "get": s.imageSave,
	}))
	s.route("POST", "/images/{rest...}", s.imageByName(map[string]imageHandler{
		"push": s.imagePush, "tag": s.imageTag,
	}))
	s.route("DELETE", "/images/{rest...}", s.imageDelete)
	s.route("POST", "/commit", s.commit)
	s.route("POST", "/auth", s.auth)
}

// imageHandler serves a route on the image named name.
type imageHandler func(w http.ResponseWriter, r *http.Request, name string) error

// imageByName dispatches /images/<name>/<action> on the action.
func (s *Server) imageByName(actions map[string]imageHandler) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, action, ok := splitImagePath(r.PathValue("rest"))
		h := actions[action]
		if !ok || h == nil {
			return errorf(errdefs.ErrNotFound, "page not found")
		}
		return h(w, r, name)
	}
}

// splitImagePath splits "<name>/<action>" at the last slash; the name may
// hold slashes of its own.
func splitImagePath(rest string) (name, action string, ok bool) {
	i := strings.LastIndex(rest, "/")
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// findImage looks an image up as docker does, with docker's message when
// there is none.
func (s *Server) findImage(ctx context.Context, name string) (store.Image, error) {
	img, err := s.images.Get(ctx, name)
	if errdefs.IsNotFound(err) || errors.Is(err, errdefs.ErrInvalidArgument) && name != "" {
		return store.Image{}, errorf(errdefs.ErrNotFound, "No such image: %s", displayName(name))
	}
	return img, err
}

// displayName is how docker quotes a name the user gave: normalised to
// its short form with the default tag ("busybox" → "busybox:latest"),
// IDs and what does not parse as typed.
func displayName(name string) string {
	if reference.IsIDPrefix(name) {
		return name
	}
	ref, err := reference.Parse(name)
	if err != nil {
		return name
	}
	return ref.Familiar()
}

// familiarName is docker's short form of a stored (normalised) name.
func familiarName(name string) string {
	ref, err := reference.Parse(name)
	if err != nil {
		return name
	}
	return ref.Familiar()
}

func familiarList(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, familiarName(n))
	}
	return out
}

// imageCreated is the image's creation time as docker shows it: the config's,
// else when berth recorded it.
func imageCreated(img store.Image, cfg *v1.ConfigFile) time.Time {
	if cfg != nil && !cfg.Created.IsZero() {
		return cfg.Created.Time
	}
	return img.Created
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "dangling", "label", "reference", "before", "since", "until")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var before, since time.Time
	for key, t := range map[string]*time.Time{"before": &before, "since": &since} {
		for _, name := range f[key] {
			img, err := s.findImage(ctx, name)
			if err != nil {
				return err
			}
			cfg, _ := s.images.Config(img)
			*t = imageCreated(img, cfg)
		}
	}
	var until time.Time
	if f.Has("until") {
		if until, err = parseTimestamp(f["until"][0], time.Now()); err != nil {
			return err
		}
	}
	dangling := ""
	if f.Has("dangling") {
		switch v := f["dangling"][0]; strings.ToLower(v) {
		case "true", "1":
			dangling = "true"
		case "false", "0":
			dangling = "false"
		default:
			return errorf(errdefs.ErrInvalidArgument, "Invalid filter 'dangling=%s'", v)
		}
	}
	imgs, err := s.images.List(ctx, "")
	if err != nil {
		return err
	}
	used, err := s.images.InUse(ctx)
	if err != nil {
		return err
	}
	out := []image.Summary{}
	for _, img := range imgs {
		cfg, err := s.images.Config(img)
		if err != nil {
			s.log.Warn("image without a readable config", "image", img.ID, "error", err)
			continue
		}
		t := imageCreated(img, cfg)
		if !before.IsZero() && !t.Before(before) || !since.IsZero() && !t.After(since) || !until.IsZero() && !t.Before(until) {
			continue
		}
		if !f.MatchLabels("label", cfg.Config.Labels) {
			continue
		}
		isDangling := len(img.RepoTags) == 0
		if dangling == "true" && !isDangling || dangling == "false" && isDangling {
			continue
		}
		sum := image.Summary{
			ID: img.ID.String(), Created: t.Unix(), Size: img.Size, SharedSize: -1,
			Labels: cfg.Config.Labels, Containers: int64(used[img.ID]),
			RepoTags: []string{}, RepoDigests: []string{},
		}
		for _, n := range img.RepoTags {
			if f.Has("reference") && !referenceMatch(f["reference"], n) {
				continue
			}
			sum.RepoTags = append(sum.RepoTags, familiarName(n))
		}
		for _, n := range img.RepoDigests {
			if f.Has("reference") && !referenceMatch(f["reference"], n) {
				continue
			}
			sum.RepoDigests = append(sum.RepoDigests, familiarName(n))
		}
		if len(sum.RepoTags)+len(sum.RepoDigests) == 0 {
			if f.Has("reference") {
				continue
			}
			if versionBefore(r, "1.44") {
				sum.RepoTags, sum.RepoDigests = []string{"<none>:<none>"}, []string{"<none>@<none>"}
			}
		}
		out = append(out, sum)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return writeJSON(w, http.StatusOK, out)
}

// referenceMatch is docker's `reference` filter: a glob against the
// short name with its tag, or without it.
func referenceMatch(patterns []string, name string) bool {
	ref, err := reference.Parse(name)
	if err != nil {
		return false
	}
	full := ref.Familiar()
	bare := ref.WithDigest("").Familiar()
	for _, p := range patterns {
		if ok, _ := path.Match(p, full); ok {
			return true
		}
		if ok, _ := path.Match(p, bare); ok {
			return true
		}
	}
	return false
}

// parseTimestamp reads docker's time filters: RFC 3339 (with or without
// a zone), a Unix time ("1700000000[.nanos]") or a duration before now
// ("10m").
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	sec, frac, hasFrac := strings.Cut(v, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err == nil {
		var ns int64
		if hasFrac {
			ns, err = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		}
		if err == nil {
			return time.Unix(n, ns), nil
		}
	}
	return time.Time{}, errorf(errdefs.ErrInvalidArgument, "failed to parse value as time or duration: %q", v)
}

// imageInspectResponse keeps the fields API versions before 1.44 still had.
type imageInspectResponse struct {
	image.InspectResponse
	Parent          string                           `json:"Parent"`
	Container       string                           `json:"Container"`
	ContainerConfig *dockerspec.DockerOCIImageConfig `json:"ContainerConfig,omitempty"`
	DockerVersion   string                           `json:"DockerVersion"`
	VirtualSize     int64                            `json:"VirtualSize"`
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := s.findImage(r.Context(), name)
	if err != nil {
		return err
	}
	cfg, err := s.images.Config(img)
	if err != nil {
		return err
	}
	resp := image.InspectResponse{
		ID: img.ID.String(), RepoTags: familiarList(img.RepoTags), RepoDigests: familiarList(img.RepoDigests),
		Created: imageCreated(img, cfg).UTC().Format(time.RFC3339Nano), Author: cfg.Author,
		Config: dockerConfig(cfg.Config), Architecture: cfg.Architecture, Variant: cfg.Variant,
		Os: cfg.OS, OsVersion: cfg.OSVersion, Size: img.Size,
		RootFS: image.RootFS{Type: "layers"},
	}
	for _, h := range cfg.History {
		if h.Comment != "" {
			resp.Comment = h.Comment // docker reports the last layer's comment
		}
	}
	for _, d := range cfg.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	if dirs, err := s.images.SnapshotDirs(r.Context(), img); err == nil && len(dirs) > 0 {
		resp.GraphDriver = &storage.DriverData{Name: "overlay2", Data: map[string]string{"LowerDir": strings.Join(dirs, ":")}}
	}
	if !versionBefore(r, "1.44") {
		return writeJSON(w, http.StatusOK, resp)
	}
	return writeJSON(w, http.StatusOK, imageInspectResponse{InspectResponse: resp, ContainerConfig: resp.Config, VirtualSize: img.Size})
}

// dockerConfig converts go-containerregistry's config to the API's: the
// JSON field names are the same.
func dockerConfig(c v1.Config) *dockerspec.DockerOCIImageConfig {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var out dockerspec.DockerOCIImageConfig
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return &out
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := s.findImage(r.Context(), name)
	if err != nil {
		return err
	}
	cfg, err := s.images.Config(img)
	if err != nil {
		return err
	}
	sizes, err := s.images.LayerSizes(r.Context(), img)
	if err != nil {
		return err
	}
	var items []image.HistoryResponseItem
	layer := 0
	for _, h := range cfg.History {
		item := image.HistoryResponseItem{ID: "<missing>", Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && layer < len(sizes) {
			item.Size = sizes[layer]
			layer++
		}
		items = append(items, item)
	}
	if len(items) == 0 {
		items = append(items, image.HistoryResponseItem{Created: imageCreated(img, cfg).Unix(), Size: img.Size})
	}
	// Newest first; the top line is the image itself.
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	items[0].ID = img.ID.String()
	items[0].Tags = familiarList(img.RepoTags)
	return writeJSON(w, http.StatusOK, items)
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return errorf(errdefs.ErrInvalidArgument, "repository name must have at least one component")
	}
	newName := repo
	if tag != "" {
		newName += ":" + tag
	}
	ref, err := reference.Parse(newName)
	if err != nil {
		return errorf(errdefs.ErrInvalidArgument, "invalid reference format: %s", newName)
	}
	if ref.Digest() != "" {
		return errorf(errdefs.ErrInvalidArgument, "refusing to create a tag with a digest reference")
	}
	src, err := s.findImage(r.Context(), name)
	if err != nil {
		return err
	}
	img, err := s.images.Tag(r.Context(), src.ID.String(), ref.String())
	if err != nil {
		return err
	}
	s.emit("image", "tag", img.ID.String(), map[string]string{"name": ref.Familiar()})
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("rest")
	ctx := r.Context()
	img, err := s.findImage(ctx, name)
	if err != nil {
		return err
	}
	res, err := s.images.Delete(ctx, name, boolValue(r, "force"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.deleteResponse(img, res))
}

// deleteResponse is docker's list of Untagged and Deleted entries, and
// the events that go with them.
func (s *Server) deleteResponse(img store.Image, res imageservice.DeleteResult) []image.DeleteResponse {
	out := []image.DeleteResponse{}
	for _, n := range res.Untagged {
		out = append(out, image.DeleteResponse{Untagged: familiarName(n)})
		// docker names the image, not the tag, in untag events
		s.emit("image", "untag", img.ID.String(), map[string]string{"name": img.ID.String()})
	}
	if res.Deleted != "" {
		out = append(out, image.DeleteResponse{Deleted: res.Deleted.String()})
		s.emit("image", "delete", img.ID.String(), map[string]string{"name": img.ID.String()})
	}
	return out
}

// imagePrune removes dangling images (all unused ones with
// dangling=false) that no container was made from, as docker does.
func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "dangling", "label", "label!", "until")
	if err != nil {
		return err
	}
	ctx := r.Context()
	danglingOnly := true
	if f.Has("dangling") {
		switch v := strings.ToLower(f["dangling"][0]); v {
		case "false", "0":
			danglingOnly = false
		case "true", "1":
		default:
			return errorf(errdefs.ErrInvalidArgument, "Invalid filter 'dangling=%s'", v)
		}
	}
	var until time.Time
	if f.Has("until") {
		if until, err = parseTimestamp(f["until"][0], time.Now()); err != nil {
			return err
		}
	}
	imgs, err := s.images.List(ctx, "")
	if err != nil {
		return err
	}
	used, err := s.images.InUse(ctx)
	if err != nil {
		return err
	}
	report := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	for _, img := range imgs {
		if used[img.ID] > 0 || danglingOnly && len(img.RepoTags) > 0 {
			continue
		}
		cfg, err := s.images.Config(img)
		if err != nil {
			continue
		}
		if !until.IsZero() && !imageCreated(img, cfg).Before(until) || !f.MatchLabels("label", cfg.Config.Labels) {
			continue
		}
		res, err := s.images.Delete(ctx, img.ID.String(), true)
		if errdefs.IsNotFound(err) || errors.Is(err, errdefs.ErrConflict) {
			continue // gone meanwhile, or a container started from it
		}
		if err != nil {
			return err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, s.deleteResponse(img, res)...)
		report.SpaceReclaimed += uint64(res.Reclaimed)
	}
	s.emit("image", "prune", "", map[string]string{"reclaimed": formatInt(int64(report.SpaceReclaimed))})
	return writeJSON(w, http.StatusOK, report)
}

// imageSearch: berth searches no registry. Docker Hub's search is its
// own service, not part of the distribution API that registries serve.
func (s *Server) imageSearch(w http.ResponseWriter, r *http.Request) error {
	term := r.URL.Query().Get("term")
	if term == "" {
		return errorf(errdefs.ErrInvalidArgument, "term is required")
	}
	host := reference.DefaultDomain
	if first, _, ok := strings.Cut(term, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host = first
	}
	return errorf(errdefs.ErrNotImplemented, "cannot search %s: berth does not implement image search (the registry API has no search endpoint); browse the registry instead", host)
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) error {
	var cfg registry.AuthConfig
	if err := readJSON(r, &cfg); err != nil {
		return err
	}
	a := remote.Auth{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth, IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}
	if err := s.images.Login(r.Context(), cfg.ServerAddress, a); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
