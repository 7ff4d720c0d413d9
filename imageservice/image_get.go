package imageservice

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Get finds an image by ID ("sha256:<hex>" or the bare hex), by any of its
// names ("busybox", "docker.io/library/busybox:latest", "repo@sha256:…"),
// or by a unique ID prefix as docker accepts. A missing image wraps
// errdefs.ErrNotFound.
func (s *Service) Get(ctx context.Context, name string) (store.Image, error) {
	var img store.Image
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		img, err = lookup(tx, name)
		return err
	})
	return img, err
}

func lookup(tx *store.Tx, name string) (store.Image, error) {
	if name == "" {
		return store.Image{}, fmt.Errorf("empty image name: %w", errdefs.ErrInvalidArgument)
	}
	if id, ok := reference.ParseID(name); ok {
		img, err := store.Get[store.Image](tx, store.Images, id.String())
		if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
			return img, err
		}
		// A bare 64-hex string could also be a name; fall through.
	}
	ref, refErr := reference.Parse(name)
	if refErr == nil {
		if id, err := store.Get[string](tx, store.ImageNames, nameKey(ref)); err == nil {
			return store.Get[store.Image](tx, store.Images, id)
		}
	}
	if reference.IsIDPrefix(name) {
		img, err := store.GetByPrefix[store.Image](tx, store.Images, "sha256:"+strings.TrimPrefix(name, "sha256:"))
		if !errdefs.IsNotFound(err) {
			return img, err
		}
	}
	if refErr != nil && !reference.IsIDPrefix(name) {
		return store.Image{}, refErr
	}
	return store.Image{}, fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
}

// nameKey is the ImageNames key of ref: its normalised form, without the
// tag when it has a digest ("repo:tag@sha256:…" names the digest).
func nameKey(ref reference.Ref) string {
	if ref.Digest() != "" {
		return ref.WithDigest(ref.Digest()).String()
	}
	return ref.String()
}

// List returns every image, ordered by ID. If filter is not empty, only
// the image it names (by ID, name or digest) is returned.
func (s *Service) List(ctx context.Context, filter string) ([]store.Image, error) {
	if filter != "" {
		img, err := s.Get(ctx, filter)
		if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []store.Image{img}, nil
	}
	var imgs []store.Image
	err := s.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Images, func(_ string, img store.Image) error {
			imgs = append(imgs, img)
			return nil
		})
	})
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].ID < imgs[j].ID })
	return imgs, err
}

// Remove deletes the image name refers to, with all its names (the CRI's
// RemoveImage semantics), then collects what nothing uses any more. A
// missing image is not an error.
func (s *Service) Remove(ctx context.Context, name string) error {
	s.mu.Lock()
	err := s.db.Update(func(tx *store.Tx) error {
		img, err := lookup(tx, name)
		if err != nil {
			return err
		}
		for _, n := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			if err := store.Delete(tx, store.ImageNames, n); err != nil {
				return err
			}
		}
		return store.Delete(tx, store.Images, img.ID.String())
	})
	s.mu.Unlock()
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.GC(ctx)
	return err
}

// GCResult says what a collection removed.
type GCResult struct {
	Snapshots int
	Blobs     int
	Bytes     int64
}

// GC removes snapshots and blobs that no image, pull under way or
// registered root uses. Records go first, in one transaction; directories
// after, so a crash in between leaves only unrecorded directories, which
// the next start removes.
func (s *Service) GC(ctx context.Context) (GCResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res GCResult
	var dirs []uint64
	liveBlobs := map[digest.Digest]bool{}
	err := s.db.Update(func(tx *store.Tx) error {
		live := map[digest.Digest]bool{}
		for id := range s.leases {
			live[id] = true
		}
		err := store.ForEach(tx, store.Images, func(_ string, img store.Image) error {
			for _, c := range img.ChainIDs {
				live[c] = true
			}
			liveBlobs[img.ID] = true
			liveBlobs[img.ManifestDigest] = true
			for _, l := range s.layerBlobs(img) {
				liveBlobs[l] = true
			}
			if img.IndexDigest != "" {
				liveBlobs[img.IndexDigest] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, roots := range s.roots {
			r, err := roots(tx)
			if err != nil {
				return err
			}
			for _, id := range r.ChainIDs {
				live[id] = true
			}
		}
		// A live snapshot keeps its parents alive. A snapshot that cannot
		// be read fails the collection: without it, its parents would look
		// dead.
		all := map[digest.Digest]store.Snapshot{}
		err = store.ForEach(tx, store.Snapshots, func(_ string, sn store.Snapshot) error {
			all[sn.ChainID] = sn
			return nil
		})
		if err != nil {
			return err
		}
		for id := range live {
			for p := all[id].Parent; p != "" && !live[p]; p = all[p].Parent {
				live[p] = true
			}
		}
		for id, sn := range all {
			if live[id] {
				continue
			}
			if err := store.Delete(tx, store.Snapshots, sn.ChainID.String()); err != nil {
				return err
			}
			dirs = append(dirs, sn.Dir)
			res.Bytes += sn.Size
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	var errs []error
	for _, n := range dirs {
		errs = append(errs, s.snaps.Remove(n))
		res.Snapshots++
	}
	// Blobs are written before the image that names them is recorded;
	// a pull under way holds leases on chain IDs, not blobs, so blobs
	// younger than no image are kept while any pull runs.
	if len(s.leases) == 0 && s.ingests == 0 {
		errs = append(errs, s.content.Walk(func(d digest.Digest) error {
			if !liveBlobs[d] {
				res.Blobs++
				return s.content.Delete(d)
			}
			return nil
		}))
	}
	if res.Snapshots > 0 || res.Blobs > 0 {
		s.log.Info("garbage collected", "snapshots", res.Snapshots, "blobs", res.Blobs, "bytes", res.Bytes)
	}
	return res, errors.Join(errs...)
}

// FsUsage is the space used by a file system of the store.
type FsUsage struct {
	// Mountpoint is the directory whose file system holds the data.
	Mountpoint string
	Bytes      int64
	Inodes     int64
}

// Usage reports the space images take: unpacked layers and blobs.
func (s *Service) Usage(ctx context.Context) (FsUsage, error) {
	u := FsUsage{Mountpoint: s.snaps.Root()}
	err := s.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Snapshots, func(_ string, sn store.Snapshot) error {
			u.Bytes += sn.Size
			u.Inodes += sn.Inodes
			return nil
		})
	})
	if err != nil {
		return u, err
	}
	b, i, err := s.content.Usage()
	u.Bytes += b
	u.Inodes += i
	return u, err
}
