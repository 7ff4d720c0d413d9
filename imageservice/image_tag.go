package imageservice

import (
	"context"
	"fmt"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Tag gives the image that source names (a name, an ID or a unique ID
// prefix, as Get takes) the name newName, normalised as docker does:
// "busybox" becomes "docker.io/library/busybox:latest". A name that another
// image had moves here; that image keeps its other names, or stays without
// any (dangling, as in docker). Tagging an image with a name it has already
// changes nothing.
//
// newName must be a tag: a malformed name, an image ID or a reference with
// a digest wraps errdefs.ErrInvalidArgument; an unknown source wraps
// errdefs.ErrNotFound. Either way nothing changes.
func (s *Service) Tag(ctx context.Context, source, newName string) (store.Image, error) {
	ref, err := reference.Parse(newName)
	if err != nil {
		return store.Image{}, err
	}
	if ref.Digest() != "" {
		return store.Image{}, fmt.Errorf("tag %q: a digest cannot be a tag: %w", newName, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var img store.Image
	err = s.db.Update(func(tx *store.Tx) error {
		var err error
		if img, err = lookup(tx, source); err != nil {
			return err
		}
		if err := s.setName(tx, &img, ref.String()); err != nil {
			return err
		}
		return store.Put(tx, store.Images, img.ID.String(), img)
	})
	if err != nil {
		return store.Image{}, fmt.Errorf("tagging %s as %s: %w", source, ref, err)
	}
	return img, nil
}
