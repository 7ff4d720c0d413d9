package imageservice

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/imageservice/unpack"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// CreateRequest makes an image of one new layer: docker import (no
// parent) and commit (on the container's image).
type CreateRequest struct {
	// Parent is the image the layer goes on (a name or ID as Get takes);
	// empty for a base image.
	Parent string
	// Layer is the layer's tar, plain, gzip or zstd. It is unpacked like
	// a pulled layer, so hostile entries are refused.
	Layer io.Reader
	// Config is the new image's run config (Cmd, Env, Labels...), taken as
	// is; Author, Comment and CreatedBy go into its metadata and history.
	Config    v1.Config
	Author    string
	Comment   string
	CreatedBy string
	// Name, if set, tags the new image.
	Name string
	// Created is the image's creation time (default now).
	Created time.Time
}

// Create makes an image from a layer tar: the layer is unpacked into a
// snapshot, kept as a gzip blob, and described by a new config (the
// parent's history and layers plus this one) and a Docker schema 2
// manifest, as docker import and commit do.
func (s *Service) Create(ctx context.Context, req CreateRequest) (store.Image, error) {
	var ref reference.Ref
	if req.Name != "" {
		var err error
		if ref, err = reference.Parse(req.Name); err != nil {
			return store.Image{}, err
		}
		if ref.Digest() != "" {
			return store.Image{}, fmt.Errorf("tag %q: a digest cannot be a tag: %w", req.Name, errdefs.ErrInvalidArgument)
		}
	}
	created := req.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	cfg := v1.ConfigFile{
		Architecture: s.platform.Architecture, OS: s.platform.OS, Variant: s.platform.Variant,
		Created: v1.Time{Time: created}, Author: req.Author, Config: req.Config,
		RootFS: v1.RootFS{Type: "layers"},
	}
	var parent store.Image
	var layers []v1.Descriptor
	if req.Parent != "" {
		var err error
		if parent, err = s.Get(ctx, req.Parent); err != nil {
			return store.Image{}, err
		}
		pcfg, err := s.Config(parent)
		if err != nil {
			return store.Image{}, err
		}
		pimg, err := s.Image(ctx, parent)
		if err != nil {
			return store.Image{}, err
		}
		m, err := pimg.Manifest()
		if err != nil {
			return store.Image{}, err
		}
		layers = append(layers, m.Layers...)
		cfg.History = append(cfg.History, pcfg.History...)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, pcfg.RootFS.DiffIDs...)
	}
	var parentChain digest.Digest
	if n := len(parent.ChainIDs); n > 0 {
		parentChain = parent.ChainIDs[n-1]
	}
	l, release, err := s.addLayer(ctx, parentChain, req.Layer, "")
	if err != nil {
		return store.Image{}, err
	}
	defer release()
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: l.diffID.Encoded()})
	cfg.History = append(cfg.History, v1.History{Created: cfg.Created, Author: req.Author, CreatedBy: req.CreatedBy, Comment: req.Comment})
	layers = append(layers, l.descriptor())
	raw, err := json.Marshal(cfg)
	if err != nil {
		return store.Image{}, err
	}
	var names []string
	if !ref.IsZero() {
		names = []string{ref.String()}
	}
	return s.recordLocal(raw, layers, names)
}

// newLayer is a layer added locally, kept as a gzip blob.
type newLayer struct {
	blob    digest.Digest
	size    int64
	diffID  digest.Digest
	chainID digest.Digest
}

func (l newLayer) descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: types.DockerLayer, Size: l.size, Digest: v1.Hash{Algorithm: "sha256", Hex: l.blob.Encoded()}}
}

// addLayer reads a layer tar (plain or compressed) on top of parent: it
// is kept as a deterministic gzip blob (the same tar always gives the same
// blob) and unpacked into a snapshot unless that layer is already there.
// wantDiffID, if set, must match. The returned release ends the lease
// that keeps the new snapshot from GC until the image is recorded.
func (s *Service) addLayer(ctx context.Context, parent digest.Digest, r io.Reader, wantDiffID digest.Digest) (newLayer, func(), error) {
	tarStream, _, err := unpack.Decompress(r)
	if err != nil {
		return newLayer{}, nil, fmt.Errorf("reading the layer: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	defer tarStream.Close()
	endIngest := s.ingest()
	ok := false
	defer func() {
		if !ok {
			endIngest()
		}
	}()
	keep, err := s.content.Writer()
	if err != nil {
		return newLayer{}, nil, err
	}
	defer keep.Discard()
	gz, err := gzip.NewWriterLevel(keep, gzip.DefaultCompression)
	if err != nil {
		return newLayer{}, nil, err
	}
	diffHash := sha256.New()
	tee := io.TeeReader(tarStream, io.MultiWriter(diffHash, gz))

	handle, dir, err := s.snaps.Temp()
	if err != nil {
		return newLayer{}, nil, err
	}
	committed := false
	defer func() {
		if !committed {
			s.snaps.Discard(handle)
		}
	}()
	// A layer already unpacked on the same parent (loading an image
	// again) is only hashed and kept; the lease keeps it meanwhile.
	var lease func()
	if wantDiffID != "" {
		lease = s.lease([]digest.Digest{chainID(parent, wantDiffID)})
		defer func() {
			if !ok {
				lease()
			}
		}()
	}
	known := wantDiffID != "" && s.hasSnapshot(chainID(parent, wantDiffID))
	if !known {
		if _, err := unpack.Apply(ctx, dir, tee); err != nil {
			return newLayer{}, nil, fmt.Errorf("unpacking the layer: %w", err)
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return newLayer{}, nil, err
	}
	if err := gz.Close(); err != nil {
		return newLayer{}, nil, err
	}
	l := newLayer{diffID: digest.NewDigest(digest.SHA256, diffHash)}
	if wantDiffID != "" && l.diffID != wantDiffID {
		return newLayer{}, nil, fmt.Errorf("layer has diff ID %s, the config says %s: %w", l.diffID, wantDiffID, errdefs.ErrDataLoss)
	}
	l.chainID = chainID(parent, l.diffID)
	l.size = keep.Size()
	if l.blob, err = keep.Commit(""); err != nil {
		return newLayer{}, nil, err
	}
	if lease == nil {
		lease = s.lease([]digest.Digest{l.chainID})
		defer func() {
			if !ok {
				lease()
			}
		}()
	}
	release := func() { lease(); endIngest() }
	if known {
		ok = true
		return l, release, nil // the deferred Discard drops the empty directory
	}
	size, inodes, err := snapshot.Usage(dir)
	if err != nil {
		return newLayer{}, nil, err
	}
	if s.syncLayers {
		if err := s.snaps.Sync(); err != nil {
			return newLayer{}, nil, err
		}
	}
	committed = true
	err = s.commitSnapshot(handle, store.Snapshot{
		ChainID: l.chainID, Parent: parent, DiffID: l.diffID,
		Size: size, Inodes: inodes, Created: time.Now().UTC(),
	})
	if err != nil {
		return newLayer{}, nil, err
	}
	ok = true
	return l, release, nil
}

// chainID is the chain ID of a layer with diff ID diffID on parent.
func chainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// recordLocal stores the config and a Docker schema 2 manifest for an
// image made or loaded here, and records it with names (normalised), which
// move to it from any image that had them.
func (s *Service) recordLocal(rawConfig []byte, layers []v1.Descriptor, names []string) (store.Image, error) {
	cfg, err := v1.ParseConfigFile(bytesReader(rawConfig))
	if err != nil {
		return store.Image{}, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return store.Image{}, fmt.Errorf("config has %d diff IDs for %d layers: %w", len(cfg.RootFS.DiffIDs), len(layers), errdefs.ErrInvalidArgument)
	}
	configDigest := digest.FromBytes(rawConfig)
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(rawConfig)), Digest: v1.Hash{Algorithm: "sha256", Hex: configDigest.Encoded()}},
		Layers: layers,
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return store.Image{}, err
	}
	manifestDigest := digest.FromBytes(rawManifest)
	if err := s.content.Put(configDigest, rawConfig); err != nil {
		return store.Image{}, err
	}
	if err := s.content.Put(manifestDigest, rawManifest); err != nil {
		return store.Image{}, err
	}
	var diffIDs []digest.Digest
	for _, d := range cfg.RootFS.DiffIDs {
		diffIDs = append(diffIDs, digest.Digest(d.String()))
	}
	chainIDs := ChainIDs(diffIDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	var img store.Image
	err = s.db.Update(func(tx *store.Tx) error {
		var err error
		img, err = store.Get[store.Image](tx, store.Images, configDigest.String())
		if errors.Is(err, errdefs.ErrNotFound) {
			img = store.Image{ID: configDigest, Created: time.Now().UTC()}
		} else if err != nil {
			return err
		}
		img.ManifestDigest, img.ManifestMediaType, img.IndexDigest = manifestDigest, string(m.MediaType), ""
		img.ChainIDs = chainIDs
		img.User, img.Labels = cfg.Config.User, cfg.Config.Labels
		img.Size = 0
		for _, c := range chainIDs {
			sn, err := store.Get[store.Snapshot](tx, store.Snapshots, c.String())
			if err != nil {
				return fmt.Errorf("layer %s: %w", c, err)
			}
			img.Size += sn.Size
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
