package imageservice

import (
	"bytes"
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Image returns a stored image as a go-containerregistry image over its
// manifest, config and layer blobs as they were pulled, loaded or made, so
// that save and push send the bytes its digests name. An image whose layer
// blobs are not kept (pulled by a berth that did not keep them) fails with
// errdefs.ErrFailedPrecondition: pulling it again restores them.
func (s *Service) Image(ctx context.Context, img store.Image) (v1.Image, error) {
	rawManifest, err := s.content.Get(img.ManifestDigest)
	if err != nil {
		return nil, fmt.Errorf("manifest of image %s: %w", short(img.ID), err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, fmt.Errorf("manifest of image %s: %v: %w", short(img.ID), err, errdefs.ErrDataLoss)
	}
	rawConfig, err := s.content.Get(img.ID)
	if err != nil {
		return nil, fmt.Errorf("config of image %s: %w", short(img.ID), err)
	}
	for _, l := range m.Layers {
		if _, ok := s.content.Has(digest.Digest(l.Digest.String())); !ok {
			return nil, fmt.Errorf("image %s: the blob of layer %s is not kept (the image was pulled before berth kept layer blobs); pull it again: %w",
				short(img.ID), l.Digest, errdefs.ErrFailedPrecondition)
		}
	}
	return partial.CompressedToImage(&storedImage{s: s, manifest: m, rawManifest: rawManifest, rawConfig: rawConfig})
}

// layerBlobs are the layer digests of img's manifest (none when the
// manifest cannot be read: GC then keeps what it can prove live).
func (s *Service) layerBlobs(img store.Image) []digest.Digest {
	raw, err := s.content.Get(img.ManifestDigest)
	if err != nil {
		return nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	out := make([]digest.Digest, 0, len(m.Layers))
	for _, l := range m.Layers {
		out = append(out, digest.Digest(l.Digest.String()))
	}
	return out
}

type storedImage struct {
	s           *Service
	manifest    *v1.Manifest
	rawManifest []byte
	rawConfig   []byte
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.rawConfig, nil }
func (i *storedImage) MediaType() (types.MediaType, error) {
	if i.manifest.MediaType != "" {
		return i.manifest.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}
func (i *storedImage) RawManifest() ([]byte, error) { return i.rawManifest, nil }

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.manifest.Layers {
		if l.Digest == h {
			return &storedLayer{s: i.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the manifest: %w", h, errdefs.ErrNotFound)
}

type storedLayer struct {
	s    *Service
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	return l.s.content.Open(digest.Digest(l.desc.Digest.String()))
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// LayerSizes returns the unpacked size of each of img's layers, bottom
// first (docker history's SIZE column).
func (s *Service) LayerSizes(ctx context.Context, img store.Image) ([]int64, error) {
	sizes := make([]int64, len(img.ChainIDs))
	err := s.db.View(func(tx *store.Tx) error {
		for i, c := range img.ChainIDs {
			sn, err := store.Get[store.Snapshot](tx, store.Snapshots, c.String())
			if err != nil {
				return fmt.Errorf("layer %s of image %s: %w", c, short(img.ID), err)
			}
			sizes[i] = sn.Size
		}
		return nil
	})
	return sizes, err
}

// Login checks credentials against a registry (docker login); see
// remote.Resolver.Login.
func (s *Service) Login(ctx context.Context, server string, auth remote.Auth) error {
	return s.resolver.Login(ctx, server, auth)
}
