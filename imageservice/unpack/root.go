package unpack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// root resolves paths beneath the layer directory without ever following a
// symlink. Every file operation of Apply goes through a directory fd it
// returns plus one final component, never through a path string.
type root struct {
	fd int // O_RDONLY|O_DIRECTORY fd of the layer directory

	// walkOnly forces the component walk; set when openat2 is unavailable.
	walkOnly bool

	// A one-entry cache of the last parent directory opened: tars list
	// siblings together, so most entries reuse it.
	cacheRel   string
	cacheFD    int // -1 when empty
	cacheStale bool

	implicitDirs int64 // missing parents created
}

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

func openRoot(dir string, walkOnly bool) (*root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &root{fd: fd, walkOnly: walkOnly, cacheFD: -1}, nil
}

func (r *root) close() {
	if r.cacheFD >= 0 {
		unix.Close(r.cacheFD)
		r.cacheFD = -1
	}
	unix.Close(r.fd)
}

// checkEmpty fails unless the layer directory is empty.
func (r *root) checkEmpty() error {
	fd, err := unix.Dup(r.fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "layer root")
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return err
	}
	if len(names) > 0 {
		return errNotEmpty
	}
	return nil
}

// invalidate marks the cached directory stale after something was removed: the
// removed node may have been the cached directory or one of its ancestors. The
// fd stays open until the next dir call, so a caller still holding it for the
// current entry is not left with a closed (or reused) fd number.
func (r *root) invalidate() { r.cacheStale = true }

// dir returns a directory fd for rel ("" is the root), owned by r: valid until
// the next dir call, not to be closed. With create, missing directories are
// created as 0755.
func (r *root) dir(rel string, create bool) (int, error) {
	if rel == "" {
		return r.fd, nil
	}
	if r.cacheFD >= 0 && !r.cacheStale && r.cacheRel == rel {
		return r.cacheFD, nil
	}
	if r.cacheFD >= 0 {
		unix.Close(r.cacheFD)
		r.cacheFD = -1
	}
	fd, err := r.open(rel, create)
	if err != nil {
		return -1, err
	}
	r.cacheRel, r.cacheFD, r.cacheStale = rel, fd, false
	return fd, nil
}

// open returns a new directory fd for rel ("" is the root) that the caller
// closes. With create, missing directories are created as 0755.
func (r *root) open(rel string, create bool) (int, error) {
	if rel == "" {
		return unix.Dup(r.fd)
	}
	if !r.walkOnly {
		fd, err := r.openat2(rel)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS):
			r.walkOnly = true
		case errors.Is(err, unix.ENOENT) && create:
			// Fall through to the walk, which creates what is missing.
		case errors.Is(err, unix.ENOTDIR):
			// Fall through to the walk, which tells a symlink (refused
			// by O_DIRECTORY before O_NOFOLLOW) from a file.
		default:
			return -1, resolveError(rel, err)
		}
	}
	return r.walk(rel, create)
}

func (r *root) openat2(rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   dirFlags,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	for range 16 {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue // a concurrent rename or mount; retry
		}
		return fd, err
	}
	return -1, unix.EAGAIN
}

// walk opens rel one component at a time with O_NOFOLLOW, the fallback for
// kernels without openat2 and the way missing parents are created.
func (r *root) walk(rel string, create bool) (int, error) {
	cur := r.fd
	for c := range strings.SplitSeq(rel, "/") {
		next, err := r.walkStep(cur, c, create)
		if cur != r.fd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, resolveError(rel, err)
		}
		cur = next
	}
	return cur, nil
}

// walkStep opens the directory c in cur, creating it if create.
func (r *root) walkStep(cur int, c string, create bool) (int, error) {
	fd, err := unix.Openat(cur, c, dirFlags, 0)
	if err == nil {
		return fd, nil
	}
	if err == unix.ENOTDIR {
		var st unix.Stat_t
		if unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, unix.ELOOP
		}
	}
	if err != unix.ENOENT || !create {
		return -1, err
	}
	if err := unix.Mkdirat(cur, c, 0o755); err != nil {
		return -1, err
	}
	r.implicitDirs++
	if fd, err = unix.Openat(cur, c, dirFlags, 0); err != nil {
		return -1, err
	}
	if err := unix.Fchmod(fd, 0o755); err != nil { // undo the umask
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// resolveError explains a failure to open a directory beneath the root.
func resolveError(rel string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return invalid("path %s passes through a symlink", quoteName(rel))
	case errors.Is(err, unix.ENOTDIR):
		return invalid("path %s passes through a non-directory", quoteName(rel))
	case errors.Is(err, unix.EXDEV):
		return invalid("path %s leaves the layer root", quoteName(rel))
	}
	return fmt.Errorf("opening %s in the layer: %w", quoteName(rel), err)
}

// removeAllAt removes base in the directory pfd, recursively if it is a
// directory, without following symlinks.
func removeAllAt(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return fmt.Errorf("removing %s: %w", quoteName(base), err)
	}
	fd, err := unix.Openat(pfd, base, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("removing %s: %w", quoteName(base), err)
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return fmt.Errorf("removing %s: %w", quoteName(base), err)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	if err := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("removing %s: %w", quoteName(base), err)
	}
	return nil
}
