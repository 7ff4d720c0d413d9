package content

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Writer streams a blob too large to hold in memory (a layer) into the
// store. Its temporary file is not a digest, so it is never seen as a blob;
// Commit verifies, syncs and renames it into place. A Writer that is neither
// committed nor discarded leaves a temporary file that the next Walk
// removes.
type Writer struct {
	f    *os.File
	dir  string
	h    hash.Hash
	size int64
	done bool
}

// Writer starts a blob.
func (s *Store) Writer() (*Writer, error) {
	dir := filepath.Join(s.root, "blobs", "sha256")
	f, err := os.CreateTemp(dir, ".ingest-*")
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, dir: dir, h: sha256.New()}, nil
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	return n, err
}

// Digest is the digest of what was written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

// Commit checks that the content has digest want ("" takes what was
// written) and makes it the blob. An existing blob is kept as is.
func (w *Writer) Commit(want digest.Digest) (digest.Digest, error) {
	got := w.Digest()
	if want != "" && got != want {
		w.Discard()
		return "", fmt.Errorf("blob %s: content has digest %s: %w", want, got, errdefs.ErrDataLoss)
	}
	if err := w.f.Sync(); err != nil {
		w.Discard()
		return "", err
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return "", err
	}
	if err := os.Rename(w.f.Name(), filepath.Join(w.dir, got.Encoded())); err != nil {
		os.Remove(w.f.Name())
		return "", err
	}
	w.done = true
	return got, atomicfile.SyncDir(w.dir)
}

// Discard drops the blob being written; after Commit it does nothing.
func (w *Writer) Discard() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}

// Open returns a reader of blob d (not verified: callers that need to check
// it hash what they read). A missing blob wraps errdefs.ErrNotFound.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	p, err := s.path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// Has reports whether blob d is stored, and its size.
func (s *Store) Has(d digest.Digest) (int64, bool) {
	p, err := s.path(d)
	if err != nil {
		return 0, false
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0, false
	}
	return st.Size(), true
}

var _ io.Writer = (*Writer)(nil)
