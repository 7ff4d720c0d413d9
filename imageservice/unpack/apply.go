package unpack

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Stats counts what Apply wrote.
type Stats struct {
	// Bytes is the number of bytes of regular file data written.
	Bytes int64
	// Inodes is the number of inodes created: files, directories (including
	// parents the layer did not list), symlinks, fifos and whiteout devices.
	// Hard links and entries that only update an existing directory create
	// none; an entry that replaces an earlier one counts again.
	Inodes int64
}

var errNotEmpty = fmt.Errorf("%w: layer directory is not empty", errdefs.ErrFailedPrecondition)

// xattrPrefix marks an extended attribute in a PAX record (the GNU tar and
// star convention, which Docker and BuildKit write).
const xattrPrefix = "SCHILY.xattr."

// copyBufferSize is the chunk regular file data is written in.
const copyBufferSize = 1 << 20

var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, copyBufferSize)
	return &b
}}

// Apply extracts the uncompressed tar stream r into dir, which must exist and
// be empty, as one overlayfs lower layer: OCI whiteouts become overlayfs
// whiteouts (see the package documentation). Ownership, mode bits (exactly as
// the header says, umask ignored), modification times and extended attributes
// are applied from the headers.
//
// On success Apply has read r to EOF, including what follows the tar end
// marker, so that a caller hashing r sees every byte. Hostile entries fail
// with an error wrapping errdefs.ErrInvalidArgument; nothing is ever written
// outside dir. Apply checks ctx between entries.
func Apply(ctx context.Context, dir string, r io.Reader) (Stats, error) {
	return apply(ctx, dir, r, applyOptions{})
}

// applyOptions are for tests.
type applyOptions struct {
	// rootless tolerates EPERM from chown, mknod and trusted.* xattrs, so the
	// fuzz target runs without root.
	rootless bool
	// walkOnly forces the O_NOFOLLOW component walk used without openat2.
	walkOnly bool
	// maxEntries overrides the entry limit when not 0.
	maxEntries int
}

func apply(ctx context.Context, dir string, r io.Reader, opts applyOptions) (Stats, error) {
	rt, err := openRoot(dir, opts.walkOnly)
	if err != nil {
		return Stats{}, err
	}
	defer rt.close()
	if err := rt.checkEmpty(); err != nil {
		return Stats{}, fmt.Errorf("%s: %w", dir, err)
	}
	a := &applier{root: rt, opts: opts, dirTimes: make(map[string][2]unix.Timespec)}
	if err := a.run(ctx, r); err != nil {
		return a.statsNow(), err
	}
	if err := a.setDirTimes(); err != nil {
		return a.statsNow(), err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return a.statsNow(), fmt.Errorf("reading the rest of the layer: %w", err)
	}
	return a.statsNow(), nil
}

type applier struct {
	root  *root
	opts  applyOptions
	stats Stats
	// dirTimes holds the times of every directory entry, set once all
	// children exist.
	dirTimes map[string][2]unix.Timespec
}

func (a *applier) statsNow() Stats {
	s := a.stats
	s.Inodes += a.root.implicitDirs
	return s
}

func (a *applier) run(ctx context.Context, r io.Reader) error {
	limit := cmp.Or(a.opts.maxEntries, maxEntries)
	tr := tar.NewReader(r)
	last := "" // the last good entry, to place header errors
	where := func() string {
		if last == "" {
			return "reading layer"
		}
		return "reading layer after entry " + quoteName(last)
	}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, tar.ErrInsecurePath):
			// Only with GODEBUG=tarinsecurepath=0; hdr is valid and
			// cleanName judges the name itself.
		case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong):
			return fmt.Errorf("%s: %w: %w", where(), errdefs.ErrInvalidArgument, err)
		case err != nil:
			return fmt.Errorf("%s: %w", where(), err)
		}
		if n >= limit {
			return fmt.Errorf("%s: %w", where(), invalid("more than %d entries", limit))
		}
		if err := a.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer entry %s: %w", quoteName(hdr.Name), err)
		}
		last = hdr.Name
	}
}

// entry extracts one tar entry; r yields its data.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	if err := checkPAX(hdr.PAXRecords); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if isSparse(hdr) {
		// archive/tar expands holes without reading input, so a tiny
		// entry could claim an exabyte of zeros.
		return invalid("sparse files are not allowed in image layers")
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return invalid("the layer root must be a directory")
		}
		return nil // the snapshotter owns the layer directory
	}
	parent, base := splitRel(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(parent, base)
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		return invalid("device nodes are not allowed in image layers")
	default:
		return invalid("unsupported entry type %q", hdr.Typeflag)
	}
	if hdr.Uid < 0 || hdr.Uid > 1<<32-2 || hdr.Gid < 0 || hdr.Gid > 1<<32-2 {
		return invalid("owner %d:%d is out of range", hdr.Uid, hdr.Gid)
	}

	pfd, err := a.root.dir(parent, true)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.mkdir(pfd, rel, base, hdr)
	case tar.TypeSymlink:
		return a.symlink(pfd, base, hdr)
	case tar.TypeLink:
		return a.hardlink(pfd, rel, base, hdr)
	case tar.TypeFifo:
		return a.fifo(pfd, base, hdr)
	}
	return a.file(pfd, base, hdr, r)
}

// isSparse reports whether hdr is a GNU sparse file, old style or PAX. The
// OCI layer spec says sparse files SHOULD NOT be used, and Docker and BuildKit
// never write them.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// create runs mk, which creates base in pfd; if base exists, it is removed
// (recursively) and mk runs again: a later entry replaces an earlier one.
func (a *applier) create(pfd int, base string, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	a.root.invalidate()
	if err := removeAllAt(pfd, base); err != nil {
		return err
	}
	return mk()
}

func (a *applier) file(pfd int, base string, hdr *tar.Header, r io.Reader) error {
	fd := -1
	err := a.create(pfd, base, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	a.stats.Inodes++
	n, err := copyData(f, r)
	a.stats.Bytes += n
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("file data: %w", io.ErrUnexpectedEOF)
	}
	if err := a.setAttrs(target{fd: fd, pfd: pfd, base: base}, hdr, true); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing file: %w", err)
	}
	return a.setTimes(pfd, base, hdr)
}

// copyData copies r to f in large chunks.
func copyData(f *os.File, r io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return total, fmt.Errorf("writing file: %w", werr)
			}
			total += int64(n)
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			// The end of the entry, or a truncated stream: the caller
			// compares the size with the header.
			return total, nil
		default:
			return total, fmt.Errorf("reading file data: %w", err)
		}
	}
}

func (a *applier) mkdir(pfd int, rel, base string, hdr *tar.Header) error {
	err := unix.Mkdirat(pfd, base, 0o700)
	switch {
	case err == nil:
		a.stats.Inodes++
	case err == unix.EEXIST:
		// A directory over a directory only updates its metadata; over
		// anything else it replaces it.
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("creating directory: %w", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			a.root.invalidate()
			if err := removeAllAt(pfd, base); err != nil {
				return err
			}
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("creating directory: %w", err)
			}
			a.stats.Inodes++
		}
	default:
		return fmt.Errorf("creating directory: %w", err)
	}
	fd, err := unix.Openat(pfd, base, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	defer unix.Close(fd)
	if err := a.setAttrs(target{fd: fd, pfd: pfd, base: base}, hdr, true); err != nil {
		return err
	}
	a.dirTimes[rel] = timespecs(hdr)
	return nil
}

func (a *applier) symlink(pfd int, base string, hdr *tar.Header) error {
	switch {
	case hdr.Linkname == "":
		return invalid("symlink has an empty target")
	case strings.IndexByte(hdr.Linkname, 0) >= 0:
		return invalid("symlink target contains a NUL byte")
	}
	err := a.create(pfd, base, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) })
	if err != nil {
		return fmt.Errorf("creating symlink: %w", err)
	}
	a.stats.Inodes++
	if err := a.setAttrs(target{fd: -1, pfd: pfd, base: base}, hdr, false); err != nil {
		return err
	}
	return a.setTimes(pfd, base, hdr)
}

func (a *applier) fifo(pfd int, base string, hdr *tar.Header) error {
	err := a.create(pfd, base, func() error { return unix.Mkfifoat(pfd, base, 0o600) })
	if err != nil {
		return fmt.Errorf("creating fifo: %w", err)
	}
	a.stats.Inodes++
	if err := a.setAttrs(target{fd: -1, pfd: pfd, base: base}, hdr, true); err != nil {
		return err
	}
	return a.setTimes(pfd, base, hdr)
}

// hardlink links base in pfd to the earlier entry hdr.Linkname. The link
// shares the target's inode, so the header's metadata is not applied.
func (a *applier) hardlink(pfd int, rel, base string, hdr *tar.Header) error {
	to, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %s: %w", quoteName(hdr.Linkname), err)
	}
	switch to {
	case "":
		return invalid("hard link to the layer root")
	case rel:
		return invalid("hard link to itself")
	}
	tparent, tbase := splitRel(to)
	tfd, err := a.root.open(tparent, false)
	if errors.Is(err, unix.ENOENT) {
		return invalid("hard link target %s does not exist in this layer", quoteName(hdr.Linkname))
	}
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	switch err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == unix.ENOENT:
		return invalid("hard link target %s does not exist in this layer", quoteName(hdr.Linkname))
	case err != nil:
		return fmt.Errorf("hard link target: %w", err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return invalid("hard link target %s is a directory", quoteName(hdr.Linkname))
	}
	// Flags 0: a link to a symlink links the symlink itself.
	err = a.create(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	if err == unix.ENOENT {
		// The target was removed to make room for the link (it lived
		// under base).
		return invalid("hard link target %s was replaced by the link", quoteName(hdr.Linkname))
	}
	if err != nil {
		return fmt.Errorf("creating hard link: %w", err)
	}
	return nil
}

// whiteout converts an OCI whiteout into overlayfs's form.
func (a *applier) whiteout(parent, base string) error {
	pfd, err := a.root.dir(parent, true)
	if err != nil {
		return err
	}
	if base == whiteoutOpaque {
		err := unix.Fsetxattr(pfd, "trusted.overlay.opaque", []byte("y"), 0)
		if err != nil && !a.tolerate(err) {
			return fmt.Errorf("marking directory opaque: %w", err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return invalid("whiteout of %s", quoteName(name))
	}
	err = a.create(pfd, name, func() error { return unix.Mknodat(pfd, name, unix.S_IFCHR, 0) })
	if err != nil && !a.tolerate(err) {
		return fmt.Errorf("creating whiteout: %w", err)
	}
	if err == nil {
		a.stats.Inodes++
	}
	return nil
}

// target is a file just created: base in the directory pfd, and an open fd
// of it, or -1 for symlinks and fifos.
type target struct {
	fd, pfd int
	base    string
}

// setAttrs applies ownership, mode (unless !chmod, for symlinks) and xattrs
// to t. chmod comes after chown, which clears setuid and setgid, and xattrs
// after both, since chown also clears security.capability.
func (a *applier) setAttrs(t target, hdr *tar.Header, chmod bool) error {
	fd, pfd, base := t.fd, t.pfd, t.base
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
	} else {
		err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil && !a.tolerate(err) {
		return fmt.Errorf("chown: %w", err)
	}
	if chmod {
		mode := uint32(hdr.Mode) & 0o7777
		if fd >= 0 {
			err = unix.Fchmod(fd, mode)
		} else {
			// Follows a symlink in base, but base is the fifo just made.
			err = unix.Fchmodat(pfd, base, mode, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, xattrPrefix)
		if !ok || !keepXattr(name) {
			continue
		}
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(value), 0)
		} else {
			err = unix.Lsetxattr(procPath(pfd, base), name, []byte(value), 0)
		}
		if err != nil && !a.tolerate(err) {
			return fmt.Errorf("setting xattr %s: %w", quoteName(name), err)
		}
	}
	return nil
}

// keepXattr reports whether an xattr from the image is applied. overlayfs's
// own attributes are not: an image must not fake an opaque directory, a
// redirect or a metacopy.
func keepXattr(name string) bool {
	return !strings.HasPrefix(name, "trusted.overlay.") && !strings.HasPrefix(name, "user.overlay.")
}

// procPath names base in the directory fd pfd for the path-only syscalls
// (lsetxattr). The kernel resolves /proc/self/fd/N to the directory itself,
// and base is one component that lsetxattr does not follow.
func procPath(pfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
}

// tolerate reports whether err is a permission error the rootless test mode
// ignores.
func (a *applier) tolerate(err error) bool {
	return a.opts.rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES))
}

func timespecs(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

// timespec converts t without UnixNano, which overflows outside 1678-2262.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func (a *applier) setTimes(pfd int, base string, hdr *tar.Header) error {
	ts := timespecs(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// setDirTimes sets the times of directory entries, deepest first, once
// creating their children can no longer change them.
func (a *applier) setDirTimes() error {
	dirs := make([]string, 0, len(a.dirTimes))
	for rel := range a.dirTimes {
		dirs = append(dirs, rel)
	}
	slices.SortFunc(dirs, func(x, y string) int {
		if c := cmp.Compare(strings.Count(y, "/"), strings.Count(x, "/")); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	for _, rel := range dirs {
		parent, base := splitRel(rel)
		pfd, err := a.root.dir(parent, false)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, errdefs.ErrInvalidArgument) {
			continue // a later entry replaced a parent
		}
		if err != nil {
			return fmt.Errorf("layer entry %s: setting times: %w", quoteName(rel), err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		ts := a.dirTimes[rel]
		if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("layer entry %s: setting times: %w", quoteName(rel), err)
		}
	}
	return nil
}
