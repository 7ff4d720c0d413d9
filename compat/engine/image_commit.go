package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// commit is docker commit: the container's writable layer becomes a new
// layer on its image, with the container's command and environment as
// the config, then the request's config and --change lines over it.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, q.Get("container"))
	if err != nil {
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
	cfg, err := s.commitConfig(ctx, pcfg.Config, c)
	if err != nil {
		return err
	}
	if body != nil {
		if err := overlayConfig(&cfg, body); err != nil {
			return err
		}
	}
	if err := applyChanges(&cfg, q["changes"]); err != nil {
		return err
	}
	// A still picture: docker pauses a running container unless asked not to.
	if q.Get("pause") == "" || boolValue(r, "pause") {
		if runtime.StateOf(c) == runtime.Running && !c.Paused {
			if err := s.containers.Pause(ctx, c.ID); err == nil {
				defer s.containers.Unpause(context.WithoutCancel(ctx), c.ID)
			}
		}
	}
	layer, err := s.containers.DiffTar(ctx, c.ID)
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

// commitConfig is the image config a container stands for, as docker
// commits it: its image's, with the container's own config over it
// (command, entrypoint, user, working directory, ports, healthcheck...),
// its environment and labels added to the image's.
func (s *Server) commitConfig(ctx context.Context, base v1.Config, c store.Container) (v1.Config, error) {
	sb, err := s.pods.Get(ctx, c.SandboxID)
	if err != nil {
		return v1.Config{}, err
	}
	cc := s.containerConfig(ctx, c, sb)
	cfg := base
	cfg.Env = append([]string{}, base.Env...)
	labels := map[string]string{}
	for k, v := range base.Labels {
		labels[k] = v
	}
	for _, e := range cc.Env {
		k, v, _ := strings.Cut(e, "=")
		cfg.Env = setEnv(cfg.Env, k, v)
	}
	for k, v := range cc.Labels {
		labels[k] = v
	}
	over := *cc
	over.Env, over.Labels = nil, nil
	if err := overlayConfig(&cfg, &over); err != nil {
		return v1.Config{}, err
	}
	cfg.Labels = labels
	if len(labels) == 0 {
		cfg.Labels = nil
	}
	return cfg, nil
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
