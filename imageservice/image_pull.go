package imageservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/imageservice/unpack"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// PullOptions are a pull's optional inputs.
type PullOptions struct {
	// Auth are credentials given with the request; without them the docker
	// config's credentials for the registry are used.
	Auth *remote.Auth
	// Progress, if set, receives progress updates while the pull runs.
	Progress func(Progress)
}

// Pull fetches name and records it, returning the image. Concurrent pulls of
// the same name (with the same credentials) share one download.
func (s *Service) Pull(ctx context.Context, name string, opts PullOptions) (store.Image, error) {
	ref, err := reference.Parse(name)
	if err != nil {
		return store.Image{}, err
	}
	key := ref.String()
	if opts.Auth != nil {
		h := sha256.Sum256([]byte(fmt.Sprintf("%+v", *opts.Auth)))
		key += "\x00" + hex.EncodeToString(h[:8])
	}
	return s.pulls.do(ctx, key, opts.Progress, func(ctx context.Context, report func(Progress)) (store.Image, error) {
		start := time.Now()
		s.metrics.inflight.Inc()
		defer s.metrics.inflight.Dec()
		img, err := s.pull(ctx, ref, opts.Auth, report)
		if err != nil {
			s.metrics.pulls.WithLabelValues("error").Inc()
			return img, err
		}
		s.metrics.pulls.WithLabelValues("ok").Inc()
		s.metrics.duration.Observe(time.Since(start).Seconds())
		s.log.Info("pulled image", "image", ref.String(), "id", img.ID, "duration", time.Since(start).Round(time.Millisecond))
		return img, nil
	})
}

// pull tries the reference's endpoints in order, mirrors then the registry,
// as remote.Try decides: a mirror's failure falls through to the next
// endpoint, except for a bad image, which would be as bad anywhere.
func (s *Service) pull(ctx context.Context, ref reference.Ref, auth *remote.Auth, report func(Progress)) (store.Image, error) {
	endpoints, err := s.resolver.Endpoints(ref, auth)
	if err != nil {
		return store.Image{}, err
	}
	img, _, err := remote.Try(ctx, endpoints, ref.String(), func(ctx context.Context, ep remote.Endpoint) (store.Image, error) {
		img, err := s.pullFrom(ctx, ref, ep, report)
		if err != nil && ep.Mirror && remote.Retryable(err, ep) {
			s.log.Warn("pull from mirror failed, trying the next endpoint", "image", ref.String(), "mirror", ep.Host, "error", err)
		}
		return img, err
	})
	return img, err
}

// fetched is what a pull learnt about the image before its layers.
type fetched struct {
	img            v1.Image
	indexDigest    digest.Digest
	rawIndex       []byte
	manifest       *v1.Manifest
	manifestDigest digest.Digest
	rawManifest    []byte
	rawConfig      []byte
	configDigest   digest.Digest
	chainIDs       []digest.Digest
	diffIDs        []digest.Digest
	config         *v1.ConfigFile
}

func (s *Service) pullFrom(ctx context.Context, ref reference.Ref, ep remote.Endpoint, report func(Progress)) (store.Image, error) {
	t := newTracker(ctx, s.log, ref.String(), s.metrics, report)
	defer t.close()
	t.report(Progress{Status: StatusResolving})
	f, err := s.resolve(ctx, ep)
	if err != nil {
		return store.Image{}, err
	}
	release := s.lease(f.chainIDs)
	defer release()

	if err := s.fetchLayers(ctx, f, t); err != nil {
		return store.Image{}, err
	}
	if f.rawIndex != nil {
		if err := s.content.Put(f.indexDigest, f.rawIndex); err != nil {
			return store.Image{}, err
		}
	}
	if err := s.content.Put(f.manifestDigest, f.rawManifest); err != nil {
		return store.Image{}, err
	}
	if err := s.content.Put(f.configDigest, f.rawConfig); err != nil {
		return store.Image{}, err
	}
	named := f.manifestDigest
	if f.indexDigest != "" {
		named = f.indexDigest
	}
	img, err := s.record(f, ref, named)
	if err != nil {
		return store.Image{}, err
	}
	t.report(Progress{Status: StatusDone, Current: t.done.Load(), Total: t.total.Load()})
	return img, nil
}

// resolve fetches the manifest (picking this platform's from an index) and
// the config, and checks that they agree.
func (s *Service) resolve(ctx context.Context, ep remote.Endpoint) (*fetched, error) {
	opts := append(append([]gremote.Option{}, ep.Options...), gremote.WithContext(ctx), gremote.WithPlatform(s.platform))
	desc, err := gremote.Get(ep.Ref, opts...)
	if err != nil {
		return nil, err
	}
	f := &fetched{}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		m, ok := s.pickManifest(im)
		if !ok {
			return nil, fmt.Errorf("%s has no image for %s: %w", ep.Ref, s.platform.String(), errdefs.ErrNotFound)
		}
		if f.img, err = idx.Image(m.Digest); err != nil {
			return nil, err
		}
		f.indexDigest = digest.Digest(desc.Digest.String())
		f.rawIndex = desc.Manifest
	case desc.MediaType.IsImage():
		if f.img, err = desc.Image(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: unsupported manifest type %q (Docker schema 2 and OCI are): %w", ep.Ref, desc.MediaType, errdefs.ErrInvalidArgument)
	}

	if f.rawManifest, err = f.img.RawManifest(); err != nil {
		return nil, err
	}
	f.manifestDigest = digest.FromBytes(f.rawManifest)
	if f.manifest, err = v1.ParseManifest(bytes.NewReader(f.rawManifest)); err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", f.manifestDigest, err, errdefs.ErrInvalidArgument)
	}
	if f.rawConfig, err = f.img.RawConfigFile(); err != nil {
		return nil, err
	}
	f.configDigest = digest.FromBytes(f.rawConfig)
	if want := f.manifest.Config.Digest.String(); f.configDigest.String() != want {
		return nil, fmt.Errorf("config blob has digest %s, manifest says %s: %w", f.configDigest, want, errdefs.ErrDataLoss)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(f.rawConfig))
	if err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", f.configDigest, err, errdefs.ErrInvalidArgument)
	}
	f.config = cfg
	if len(cfg.RootFS.DiffIDs) != len(f.manifest.Layers) {
		return nil, fmt.Errorf("manifest has %d layers, config %d diff IDs: %w", len(f.manifest.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	for _, d := range cfg.RootFS.DiffIDs {
		f.diffIDs = append(f.diffIDs, digest.Digest(d.String()))
	}
	f.chainIDs = ChainIDs(f.diffIDs)
	return f, nil
}

func (s *Service) pickManifest(im *v1.IndexManifest) (v1.Descriptor, bool) {
	for _, m := range im.Manifests {
		if m.Platform == nil || !m.MediaType.IsImage() {
			continue
		}
		p := m.Platform
		if p.OS == s.platform.OS && p.Architecture == s.platform.Architecture &&
			(s.platform.Variant == "" || p.Variant == s.platform.Variant) {
			return m, true
		}
	}
	return v1.Descriptor{}, false
}

// ChainIDs computes the OCI chain IDs of a stack of diff IDs, bottom first:
// ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// fetchLayers downloads and unpacks every layer not already present, up to
// s.downloads at a time. Layers unpack into their own directories, so they
// run in parallel regardless of order.
func (s *Service) fetchLayers(ctx context.Context, f *fetched, t *tracker) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.downloads)
	for _, l := range f.manifest.Layers {
		t.total.Add(l.Size)
		t.report(Progress{Layer: digest.Digest(l.Digest.String()), Status: StatusWaiting, Total: l.Size})
	}
	for i, l := range f.manifest.Layers {
		chainID, diffID := f.chainIDs[i], f.diffIDs[i]
		var parent digest.Digest
		if i > 0 {
			parent = f.chainIDs[i-1]
		}
		layerDigest := digest.Digest(l.Digest.String())
		if _, kept := s.content.Has(layerDigest); kept && s.hasSnapshot(chainID) {
			t.done.Add(l.Size)
			t.report(Progress{Layer: layerDigest, Status: StatusExists})
			continue
		}
		g.Go(func() error {
			_, err := s.layers.do(gctx, chainID.String(), nil, func(ctx context.Context, _ func(Progress)) (struct{}, error) {
				if _, kept := s.content.Has(layerDigest); kept && s.hasSnapshot(chainID) {
					return struct{}{}, nil
				}
				layer, err := f.img.LayerByDigest(l.Digest)
				if err != nil {
					return struct{}{}, err
				}
				c := &counter{t: t, layer: layerDigest, size: l.Size}
				return struct{}{}, s.unpackLayer(ctx, layer, layerSpec{digest: layerDigest, diffID: diffID, chainID: chainID, parent: parent}, c)
			})
			if err != nil {
				return fmt.Errorf("layer %s: %w", layerDigest, err)
			}
			t.report(Progress{Layer: layerDigest, Status: StatusComplete})
			return nil
		})
	}
	return g.Wait()
}

func (s *Service) hasSnapshot(chainID digest.Digest) bool {
	var ok bool
	s.db.View(func(tx *store.Tx) error {
		ok = store.Has(tx, store.Snapshots, chainID.String())
		return nil
	})
	return ok
}

type layerSpec struct {
	digest, diffID, chainID, parent digest.Digest
}

// unpackLayer streams one layer blob through its digest check and its
// decompressor into a fresh directory, checks the diff ID, and records the
// snapshot. Nothing is recorded unless every check passed.
func (s *Service) unpackLayer(ctx context.Context, layer v1.Layer, spec layerSpec, c *counter) (err error) {
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	handle, dir, err := s.snaps.Temp()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.snaps.Discard(handle)
		}
	}()

	// The blob is kept as it came, for save and push.
	keep, err := s.content.Writer()
	if err != nil {
		return err
	}
	defer keep.Discard()
	blobHash := sha256.New()
	blob := io.TeeReader(&countingReader{r: rc, c: c}, io.MultiWriter(blobHash, keep))
	tarStream, _, err := unpack.Decompress(blob)
	if err != nil {
		return err
	}
	diffHash := sha256.New()
	_, err = unpack.Apply(ctx, dir, io.TeeReader(tarStream, diffHash))
	tarStream.Close()
	if err != nil {
		return err
	}
	// Read what the decompressor left (trailing padding) so that the
	// whole blob is hashed and the transport's own check runs.
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return err
	}
	if err := checkDigest("blob", spec.digest, blobHash); err != nil {
		return err
	}
	if err := checkDigest("uncompressed layer", spec.diffID, diffHash); err != nil {
		return err
	}
	if _, err := keep.Commit(spec.digest); err != nil {
		return err
	}
	size, inodes, err := snapshot.Usage(dir)
	if err != nil {
		return err
	}
	if s.syncLayers {
		if err := s.snaps.Sync(); err != nil {
			return err
		}
	}
	return s.commitSnapshot(handle, store.Snapshot{
		ChainID: spec.chainID, Parent: spec.parent, DiffID: spec.diffID,
		Size: size, Inodes: inodes, Created: time.Now().UTC(),
	})
}

func checkDigest(what string, want digest.Digest, h hash.Hash) error {
	if got := digest.NewDigest(digest.SHA256, h); got != want {
		return fmt.Errorf("%s has digest %s, expected %s: %w", what, got, want, errdefs.ErrDataLoss)
	}
	return nil
}

// commitSnapshot moves a verified layer into place and records it in one
// transaction; if the record cannot be written, the directory goes back.
func (s *Service) commitSnapshot(handle string, sn store.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *store.Tx) error {
		if store.Has(tx, store.Snapshots, sn.ChainID.String()) {
			// Another unpack of the same layer won (one that a cancelled
			// pull left running while a new one started): keep that one.
			return s.snaps.Discard(handle)
		}
		n, err := tx.NextID(store.Snapshots)
		if err != nil {
			return err
		}
		sn.Dir = n
		if err := s.snaps.Commit(handle, n); err != nil {
			return err
		}
		if err := store.Put(tx, store.Snapshots, sn.ChainID.String(), sn); err != nil {
			s.snaps.Remove(n)
			return err
		}
		return nil
	})
}

// record writes the image and its names. A name that pointed at another
// image moves to this one.
func (s *Service) record(f *fetched, ref reference.Ref, named digest.Digest) (store.Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var img store.Image
	err := s.db.Update(func(tx *store.Tx) error {
		var err error
		img, err = store.Get[store.Image](tx, store.Images, f.configDigest.String())
		if errors.Is(err, errdefs.ErrNotFound) {
			img = store.Image{ID: f.configDigest, Created: time.Now().UTC()}
		} else if err != nil {
			return err
		}
		img.ManifestDigest = f.manifestDigest
		img.ManifestMediaType = string(f.manifest.MediaType)
		img.IndexDigest = f.indexDigest
		img.ChainIDs = f.chainIDs
		img.User, img.Labels = f.config.Config.User, f.config.Config.Labels
		img.Size = 0
		for _, c := range f.chainIDs {
			sn, err := store.Get[store.Snapshot](tx, store.Snapshots, c.String())
			if err != nil {
				return fmt.Errorf("layer %s vanished during the pull: %w", c, err)
			}
			img.Size += sn.Size
		}
		names := []string{ref.WithDigest(named).String()}
		if ref.Tag() != "" && ref.Digest() == "" {
			names = append(names, ref.String())
		}
		for _, n := range names {
			if err := s.setName(tx, &img, n); err != nil {
				return err
			}
		}
		return store.Put(tx, store.Images, img.ID.String(), img)
	})
	return img, err
}

// setName points name at img, taking it from the image that had it.
func (s *Service) setName(tx *store.Tx, img *store.Image, name string) error {
	if oldID, err := store.Get[string](tx, store.ImageNames, name); err == nil && oldID != img.ID.String() {
		old, err := store.Get[store.Image](tx, store.Images, oldID)
		if err == nil {
			old.RepoTags = without(old.RepoTags, name)
			old.RepoDigests = without(old.RepoDigests, name)
			if err := store.Put(tx, store.Images, oldID, old); err != nil {
				return err
			}
		}
	}
	if strings.Contains(name, "@") {
		img.RepoDigests = withName(img.RepoDigests, name)
	} else {
		img.RepoTags = withName(img.RepoTags, name)
	}
	return store.Put(tx, store.ImageNames, name, img.ID.String())
}

func without(names []string, name string) []string {
	out := names[:0:0]
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

func withName(names []string, name string) []string {
	for _, n := range names {
		if n == name {
			return names
		}
	}
	names = append(names, name)
	sort.Strings(names)
	return names
}

type countingReader struct {
	r io.Reader
	c *counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.c.add(n)
	}
	return n, err
}
