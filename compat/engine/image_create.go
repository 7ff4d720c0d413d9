package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// imageCreate is docker pull (fromImage) and docker import (fromSrc).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	switch {
	case q.Get("fromImage") != "":
		return s.imagePull(w, r)
	case q.Get("fromSrc") != "":
		return s.imageImport(w, r)
	}
	return errorf(errdefs.ErrInvalidArgument, "either fromImage or fromSrc is required")
}

// pullRef is the reference a pull asks for: fromImage with the tag
// parameter, which the CLI also uses for a digest.
func pullRef(fromImage, tag string) (reference.Ref, error) {
	name := fromImage
	if tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			name += "@" + tag
		} else {
			name += ":" + tag
		}
	}
	ref, err := reference.Parse(name)
	if err != nil {
		return reference.Ref{}, errorf(errdefs.ErrInvalidArgument, "invalid reference format: %s", name)
	}
	return ref, nil
}

func (s *Server) imagePull(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref, err := pullRef(q.Get("fromImage"), q.Get("tag"))
	if err != nil {
		return err
	}
	if p := q.Get("platform"); p != "" {
		want, err := v1.ParsePlatform(p)
		if err != nil {
			return errorf(errdefs.ErrInvalidArgument, "invalid platform %q: %v", p, err)
		}
		host := s.images.Platform()
		if want.OS != host.OS || want.Architecture != host.Architecture || want.Variant != "" && want.Variant != host.Variant {
			return errorf(errdefs.ErrInvalidArgument, "image platform %s is not supported: berth pulls and runs %s images", p, host.String())
		}
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	old, oldErr := s.images.Get(ctx, ref.String())
	out := newProgressStream(w)
	id := ref.Tag()
	if ref.Digest() != "" {
		id = ref.Digest().String()
	}
	rep := &pullReporter{out: out, tag: id, path: ref.Path()}
	img, err := s.images.Pull(ctx, ref.String(), imageservice.PullOptions{Auth: auth, Progress: rep.report})
	if err != nil {
		return out.finish(pullError(err, ref))
	}
	upToDate := oldErr == nil && old.ID == img.ID && old.ManifestDigest == img.ManifestDigest
	if !upToDate {
		rep.flush()
	}
	if !rep.started {
		out.status(id, "Pulling from "+ref.Path())
	}
	named := img.ManifestDigest
	if img.IndexDigest != "" {
		named = img.IndexDigest
	}
	if ref.Digest() != "" {
		named = ref.Digest()
	}
	out.status("", "Digest: "+named.String())
	if upToDate {
		out.status("", "Status: Image is up to date for "+ref.Familiar())
	} else {
		out.status("", "Status: Downloaded newer image for "+ref.Familiar())
	}
	s.emit("image", "pull", ref.Familiar(), map[string]string{"name": ref.Familiar()})
	return nil
}

// pullError words the common failures as docker does.
func pullError(err error, ref reference.Ref) error {
	switch {
	case errdefs.IsNotFound(err):
		return errorf(errdefs.ErrNotFound, "manifest for %s not found: manifest unknown: %v", ref.Familiar(), err)
	case errors.Is(err, errdefs.ErrUnauthenticated):
		return errorf(errdefs.ErrNotFound, "pull access denied for %s, repository does not exist or may require 'docker login': %v", ref.WithDigest("").Familiar(), err)
	}
	return err
}

// imageImport is docker import: the request body (fromSrc=-) or a URL's
// content is one layer, with a config made of the changes.
func (s *Server) imageImport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	src := q.Get("fromSrc")
	name := ""
	if repo := q.Get("repo"); repo != "" {
		ref, err := pullRef(repo, q.Get("tag"))
		if err != nil {
			return err
		}
		if ref.Digest() != "" {
			return errorf(errdefs.ErrInvalidArgument, "cannot import digest reference")
		}
		name = ref.String()
	}
	var cfg v1.Config
	if err := applyChanges(&cfg, q["changes"]); err != nil {
		return err
	}
	if p := q.Get("platform"); p != "" {
		want, err := v1.ParsePlatform(p)
		if err != nil || want.OS != s.images.Platform().OS || want.Architecture != s.images.Platform().Architecture {
			return errorf(errdefs.ErrInvalidArgument, "image platform %s is not supported", p)
		}
	}
	body := io.Reader(r.Body)
	if src != "-" {
		u := src
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
		if err != nil {
			return errorf(errdefs.ErrInvalidArgument, "invalid fromSrc %q: %v", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return errorf(errdefs.ErrUnavailable, "fetching %s: %v", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errorf(errdefs.ErrUnavailable, "fetching %s: %s", src, resp.Status)
		}
		body = resp.Body
	}
	message := q.Get("message")
	if message == "" {
		message = "Imported from " + src
	}
	img, err := s.images.Create(r.Context(), imageservice.CreateRequest{
		Layer: body, Config: cfg, Comment: message, Name: name, Created: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	out := newProgressStream(w)
	out.send(streamMessage{Message: jsonstream.Message{Status: img.ID.String()}})
	if name != "" {
		s.emit("image", "tag", img.ID.String(), map[string]string{"name": familiarName(name)})
	}
	s.emit("image", "import", img.ID.String(), map[string]string{"name": img.ID.String()})
	return nil
}

// imagePush is docker push: the layers' progress, then docker's summary
// line "<tag>: digest: sha256:… size: N"; without a tag (push -a), every
// tag of the repository.
func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) error {
	tag := r.URL.Query().Get("tag")
	if tag != "" {
		name += ":" + tag
	}
	ref, err := reference.Parse(name)
	if err != nil {
		return errorf(errdefs.ErrInvalidArgument, "invalid reference format: %s", name)
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	targets := []reference.Ref{ref}
	if tag == "" && !nameHasTag(name) {
		if targets, err = s.repositoryTags(r.Context(), ref); err != nil {
			return err
		}
	}
	if len(targets) == 0 {
		return errorf(errdefs.ErrNotFound, "An image does not exist locally with the tag: %s", ref.WithDigest("").Familiar())
	}
	for _, t := range targets {
		if _, err := s.images.Get(r.Context(), t.String()); err != nil {
			return errorf(errdefs.ErrNotFound, "An image does not exist locally with the tag: %s", t.Familiar())
		}
	}
	out := newProgressStream(w)
	out.status("", fmt.Sprintf("The push refers to repository [%s]", ref.WithDigest("").Familiar()))
	for _, t := range targets {
		res, err := s.images.Push(r.Context(), t.String(), imageservice.PushOptions{Auth: auth, Progress: func(p imageservice.Progress) {
			id := shortDigest(p.Layer.Encoded())
			m := streamMessage{Message: jsonstream.Message{ID: id, Status: p.Status, Progress: &jsonstream.Progress{}}}
			if p.Status == imageservice.StatusPushing {
				m.Progress = &jsonstream.Progress{Current: p.Current, Total: p.Total}
				m.ProgressMessage = progressBar(p.Current, p.Total)
			}
			out.send(m)
		}})
		if err != nil {
			return out.finish(err)
		}
		out.status("", fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size))
		s.emit("image", "push", t.Familiar(), map[string]string{"name": t.Familiar()})
	}
	return nil
}

// nameHasTag reports whether a name as typed has a tag or a digest.
func nameHasTag(n string) bool {
	if strings.Contains(n, "@") {
		return true
	}
	return strings.Contains(n[strings.LastIndex(n, "/")+1:], ":")
}

// repositoryTags are the local tags of ref's repository, sorted.
func (s *Server) repositoryTags(ctx context.Context, ref reference.Ref) ([]reference.Ref, error) {
	imgs, err := s.images.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []reference.Ref
	for _, img := range imgs {
		for _, n := range img.RepoTags {
			if t, err := reference.Parse(n); err == nil && t.Repository() == ref.Repository() {
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
