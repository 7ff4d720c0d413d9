package imageservice

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Push progress statuses, worded as docker words them; Progress.Layer is
// the layer's diff ID.
const (
	StatusPreparing   = "Preparing"
	StatusPushing     = "Pushing"
	StatusPushed      = "Pushed"
	StatusLayerExists = "Layer already exists"
)

// PushOptions are a push's optional inputs.
type PushOptions struct {
	// Auth are credentials given with the request; without them the docker
	// config's credentials for the registry are used.
	Auth *remote.Auth
	// Progress, if set, receives progress updates while the push runs.
	Progress func(Progress)
}

// PushResult is what docker prints at the end of a push.
type PushResult struct {
	// Tag is the tag pushed; Digest and Size the manifest's.
	Tag    string
	Digest digest.Digest
	Size   int64
}

// Push sends the image that name names to the registry of name, layers
// first (as many at a time as pulls fetch), then its manifest under the
// tag. The layers' blobs are sent as stored, so a pulled image keeps its
// manifest digest. Errors from the registry are Classify'd.
func (s *Service) Push(ctx context.Context, name string, opts PushOptions) (PushResult, error) {
	ref, err := reference.Parse(name)
	if err != nil {
		return PushResult{}, err
	}
	if ref.Digest() != "" {
		return PushResult{}, fmt.Errorf("push %q: a digest cannot be pushed to: %w", name, errdefs.ErrInvalidArgument)
	}
	img, err := s.Get(ctx, ref.String())
	if err != nil {
		return PushResult{}, fmt.Errorf("An image does not exist locally with the tag: %s: %w", ref.Familiar(), errdefs.ErrNotFound)
	}
	vimg, err := s.Image(ctx, img)
	if err != nil {
		return PushResult{}, err
	}
	eps, err := s.resolver.Endpoints(ref, opts.Auth)
	if err != nil {
		return PushResult{}, err
	}
	ep := eps[len(eps)-1] // the registry itself, never a mirror
	report := opts.Progress
	if report == nil {
		report = func(Progress) {}
	}
	cfg, err := vimg.ConfigFile()
	if err != nil {
		return PushResult{}, err
	}
	layers, err := vimg.Layers()
	if err != nil {
		return PushResult{}, err
	}
	wopts := append(append([]gremote.Option{}, ep.Options...), gremote.WithContext(ctx))
	for i := len(layers) - 1; i >= 0; i-- {
		report(Progress{Layer: digest.Digest(cfg.RootFS.DiffIDs[i].String()), Status: StatusPreparing})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.downloads)
	for i, l := range layers {
		diffID := digest.Digest(cfg.RootFS.DiffIDs[i].String())
		g.Go(func() error {
			if d, err := l.Digest(); err == nil {
				if rl, err := gremote.Layer(ep.Ref.Context().Digest(d.String()), append(append([]gremote.Option{}, wopts...), gremote.WithContext(gctx))...); err == nil {
					if ok, _ := partial.Exists(rl); ok {
						report(Progress{Layer: diffID, Status: StatusLayerExists})
						return nil
					}
				}
			}
			size, _ := l.Size()
			updates := make(chan v1.Update, 16)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for u := range updates {
					report(Progress{Layer: diffID, Status: StatusPushing, Current: u.Complete, Total: size})
				}
			}()
			err := gremote.WriteLayer(ep.Ref.Context(), l, append(append([]gremote.Option{}, wopts...), gremote.WithContext(gctx), gremote.WithProgress(updates))...)
			if err != nil {
				return err // done may never close if the options were refused
			}
			<-done
			report(Progress{Layer: diffID, Status: StatusPushed})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return PushResult{}, pushError(err, ref, ep)
	}
	if err := gremote.Write(ep.Ref, vimg, wopts...); err != nil {
		return PushResult{}, pushError(err, ref, ep)
	}
	size, err := vimg.Size()
	if err != nil {
		return PushResult{}, err
	}
	s.log.Info("pushed image", "image", ref.String(), "digest", img.ManifestDigest)
	return PushResult{Tag: ref.Tag(), Digest: img.ManifestDigest, Size: size}, nil
}

func pushError(err error, ref reference.Ref, ep remote.Endpoint) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("pushing %s: %w", ref.Familiar(), remote.Classify(err, ref.String(), ep.Host))
}
