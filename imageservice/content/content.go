// Package content stores blobs (manifests, indexes, configs, and the
// compressed layers as they were pulled, loaded or made) by digest under
// <root>/blobs/sha256/<hex>. A blob is written to a temporary file, fsynced,
// verified against its digest and only then renamed into place, so a blob
// that is visible is whole and correct. Layers are kept besides their
// unpacked snapshots because save and push must send the exact bytes whose
// digests the image's manifest and config name.
package content

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Store is a directory of blobs by digest.
type Store struct {
	root string
}

// New opens (creating) a store at root.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(root, "blobs", "sha256"), 0o700); err != nil {
		return nil, err
	}
	return &Store{root: root}, nil
}

func (s *Store) path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w", d, errdefs.ErrInvalidArgument)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %q: only sha256 is supported: %w", d, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded()), nil
}

// Put verifies that data has digest d and stores it. Storing a blob that is
// already there is a no-op.
func (s *Store) Put(d digest.Digest, data []byte) error {
	p, err := s.path(d)
	if err != nil {
		return err
	}
	if got := digest.SHA256.FromBytes(data); got != d {
		return fmt.Errorf("blob %s: content has digest %s: %w", d, got, errdefs.ErrDataLoss)
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return atomicfile.WriteFile(p, data, 0o600)
}

// Get returns the blob d, verified. A missing blob wraps errdefs.ErrNotFound.
func (s *Store) Get(d digest.Digest) ([]byte, error) {
	p, err := s.path(d)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if got := digest.SHA256.FromBytes(data); got != d {
		return nil, fmt.Errorf("blob %s is damaged on disk (content has digest %s): %w", d, got, errdefs.ErrDataLoss)
	}
	return data, nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(d digest.Digest) error {
	p, err := s.path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk calls fn with every stored digest. Leftover temporary files from a
// crash are removed on the way, so Walk must not run while a Put may.
func (s *Store) Walk(fn func(digest.Digest) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// Usage returns the bytes on disk and the number of blobs. Unlike Walk it
// leaves temporary files alone: it runs while pulls write blobs.
func (s *Store) Usage() (bytes, inodes int64, err error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "blobs", "sha256"))
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if digest.NewDigestFromEncoded(digest.SHA256, e.Name()).Validate() != nil {
			continue // a blob being written
		}
		st, err := e.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		bytes += diskBytes(st)
		inodes++
	}
	return bytes, inodes, nil
}
