// Package snapshot manages the directories of unpacked layers under
// <root>/snapshots. A layer is unpacked into tmp/<random>/fs, then renamed to
// <n>/fs once it is verified; the number n comes from the metadata store, and
// a numbered directory without a record is a leftover of a crash between the
// rename and the record's commit, removed by Clean at start-up.
package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/atomicfile"
)

// Dirs is the snapshots directory.
type Dirs struct {
	root string
}

// New opens (creating) the snapshots directory at root.
func New(root string) (*Dirs, error) {
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, err
	}
	return &Dirs{root: root}, nil
}

// Root is the snapshots directory itself.
func (d *Dirs) Root() string { return d.root }

// Path is the file system of snapshot n.
func (d *Dirs) Path(n uint64) string {
	return filepath.Join(d.root, strconv.FormatUint(n, 10), "fs")
}

// Temp makes a new empty directory to unpack a layer into. It returns the
// handle to pass to Commit or Discard and the directory to unpack into.
func (d *Dirs) Temp() (handle, fsDir string, err error) {
	handle, err = os.MkdirTemp(filepath.Join(d.root, "tmp"), "layer-")
	if err != nil {
		return "", "", err
	}
	fsDir = filepath.Join(handle, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		os.RemoveAll(handle)
		return "", "", err
	}
	return handle, fsDir, nil
}

// Sync flushes the file system that holds the snapshots (syncfs), so that
// everything unpacked so far is on disk before a record names it.
func (d *Dirs) Sync() error {
	f, err := os.Open(d.root)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// Commit moves a finished temporary layer to its numbered place.
func (d *Dirs) Commit(handle string, n uint64) error {
	dst := filepath.Join(d.root, strconv.FormatUint(n, 10))
	if err := os.Rename(handle, dst); err != nil {
		return fmt.Errorf("committing snapshot %d: %w", n, err)
	}
	return atomicfile.SyncDir(d.root)
}

// Discard removes a temporary layer.
func (d *Dirs) Discard(handle string) error { return os.RemoveAll(handle) }

// Remove deletes snapshot n; a missing one is not an error.
func (d *Dirs) Remove(n uint64) error {
	return os.RemoveAll(filepath.Join(d.root, strconv.FormatUint(n, 10)))
}

// Clean removes every temporary layer and every numbered directory that
// keep does not name. It is meant for start-up, before any pull runs.
func (d *Dirs) Clean(keep map[uint64]bool) (removed []string, err error) {
	tmp := filepath.Join(d.root, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(tmp, e.Name())
		errs = append(errs, os.RemoveAll(p))
		removed = append(removed, p)
	}
	entries, err = os.ReadDir(d.root)
	if err != nil {
		return removed, err
	}
	for _, e := range entries {
		n, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || keep[n] {
			continue
		}
		p := filepath.Join(d.root, e.Name())
		errs = append(errs, os.RemoveAll(p))
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// Usage walks dir and returns the bytes it occupies on disk and its
// inodes, counting hard-linked files once.
func Usage(dir string) (bytes, inodes int64, err error) {
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !de.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		bytes += st.Blocks * 512
		inodes++
		return nil
	})
	return bytes, inodes, err
}
