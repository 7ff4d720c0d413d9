package engine

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// diffTarrer is the runtime's writable-layer export (runtime.Manager's
// DiffTar): the container's changes as an OCI layer tar.
type diffTarrer interface {
	DiffTar(ctx context.Context, id string) (io.ReadCloser, error)
}

// commit is docker commit: the container's writable layer becomes a new
// layer on its image, with the container's command and environment as
// the config, then the request's config and --change lines over it.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ctx := r.Context()
	c, err := s.containers.Get(ctx, strings.TrimPrefix(q.Get("container"), "/"))
	if err != nil {
		if errdefs.IsNotFound(err) {
			return errorf(errdefs.ErrNotFound, "No such container: %s", q.Get("container"))
		}
		return err
	}
	name := ""
	if repo := q.Get("repo"); repo != "" {
		ref, err := pullRef(repo, q.Get("tag"))
		if err != nil {
			return err
		}
		if ref.Digest() != "" {
			return errorf(errdefs.ErrInvalidArgument, "cannot commit to digest reference")
		}
		name = ref.String()
	}
	var body *container.Config
	if err := readJSON(r, &body); err != nil {
		return err
	}
	parent, err := s.images.Get(ctx, c.ImageID.String())
	if err != nil {
		return errorf(errdefs.ErrFailedPrecondition, "the image of container %s is gone: %v", truncateID(c.ID), err)
	}
	pcfg, err := s.images.Config(parent)
	if err != nil {
		return err
	}
	cfg := commitConfig(pcfg.Config, c)
	if body != nil {
		if err := overlayConfig(&cfg, body); err != nil {
			return err
		}
	}
	if err := applyChanges(&cfg, q["changes"]); err != nil {
		return err
	}
	differ, ok := any(s.containers).(diffTarrer)
	if !ok {
		return errorf(errdefs.ErrNotImplemented, "commit needs the container's writable layer, which this berth cannot export yet")
	}
	layer, err := differ.DiffTar(ctx, c.ID)
	if err != nil {
		return err
	}
	defer layer.Close()
	img, err := s.images.Create(ctx, imageservice.CreateRequest{
		Parent: parent.ID.String(), Layer: layer, Config: cfg,
		Author: q.Get("author"), Comment: q.Get("comment"), Name: name, Created: time.Now().UTC(),
		CreatedBy: strings.Join(append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...), " "),
	})
	if err != nil {
		return err
	}
	attrs := map[string]string{"comment": q.Get("comment"), "imageID": img.ID.String(), "imageRef": familiarName(name)}
	s.emit("container", "commit", c.ID, attrs)
	return writeJSON(w, http.StatusCreated, container.CommitResponse{ID: img.ID.String()})
}

// commitConfig is the image config a container stands for: its image's,
// with the command, arguments, environment and working directory it was
// created with.
func commitConfig(base v1.Config, c store.Container) v1.Config {
	cfg := base
	cfg.Env = append([]string{}, base.Env...)
	if len(c.Process.Command) > 0 {
		cfg.Entrypoint = c.Process.Command
		cfg.Cmd = c.Process.Args
	} else if len(c.Process.Args) > 0 {
		cfg.Cmd = c.Process.Args
	}
	for _, e := range c.Process.Env {
		k, v, _ := strings.Cut(e, "=")
		cfg.Env = setEnv(cfg.Env, k, v)
	}
	if c.Process.WorkingDir != "" {
		cfg.WorkingDir = c.Process.WorkingDir
	}
	return cfg
}

// overlayConfig sets the fields the request's config gives (docker
// commit's body) over cfg.
func overlayConfig(cfg *v1.Config, body *container.Config) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(raw, &given); err != nil {
		return err
	}
	for k, v := range given {
		if string(v) == "null" || string(v) == `""` || string(v) == "false" || string(v) == "{}" || string(v) == "[]" {
			delete(given, k)
		}
	}
	merged, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	var base map[string]json.RawMessage
	if err := json.Unmarshal(merged, &base); err != nil {
		return err
	}
	for _, k := range []string{"User", "ExposedPorts", "Env", "Cmd", "Entrypoint", "Volumes", "WorkingDir", "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild"} {
		if v, ok := given[k]; ok {
			base[k] = v
		}
	}
	out, err := json.Marshal(base)
	if err != nil {
		return err
	}
	var next v1.Config
	if err := json.Unmarshal(out, &next); err != nil {
		return errorf(errdefs.ErrInvalidArgument, "invalid config: %v", err)
	}
	*cfg = next
	return nil
}

func truncateID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
