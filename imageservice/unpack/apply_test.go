package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/testutil"
)

// testOptions lets tests that do not check ownership run without root.
func testOptions() applyOptions {
	return applyOptions{rootless: os.Geteuid() != 0}
}

var (
	testTime  = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	testTime2 = time.Date(2021, 1, 2, 3, 4, 5, 987654321, time.UTC)
)

// tarEntry is one entry of a test tar.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func reg(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, body: body}
}

func dirEntry(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func fifo(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: mode}}
}

func (e tarEntry) owner(uid, gid int) tarEntry {
	e.hdr.Uid, e.hdr.Gid = uid, gid
	return e
}

func (e tarEntry) xattr(name, value string) tarEntry {
	records := map[string]string{xattrPrefix + name: value}
	for k, v := range e.hdr.PAXRecords {
		records[k] = v
	}
	e.hdr.PAXRecords = records
	return e
}

func (e tarEntry) mtime(t time.Time) tarEntry {
	e.hdr.ModTime = t
	return e
}

// makeTar builds a PAX tar of entries; regular files get the size of their
// body and entries without a time get testTime.
func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layout is a temp parent holding the layer root and, beside it, an outside
// directory with a sentinel file that hostile layers aim at.
type layout struct {
	parent, root, outside, sentinel string
}

const sentinelContent = "sentinel: must not change"

func newLayout(t testing.TB) layout {
	t.Helper()
	parent := t.TempDir()
	l := layout{
		parent:   parent,
		root:     filepath.Join(parent, "root"),
		outside:  filepath.Join(parent, "outside"),
		sentinel: filepath.Join(parent, "outside", "sentinel"),
	}
	for _, d := range []string{l.root, l.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(l.sentinel, []byte(sentinelContent), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// checkContained fails t if anything outside the layer root changed.
func (l layout) checkContained(t testing.TB) {
	t.Helper()
	for dir, want := range map[string][]string{
		l.parent:  {"outside", "root"},
		l.outside: {"sentinel"},
	} {
		got, err := readDirNames(dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s changed (-want +got):\n%s", dir, diff)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.sentinel, &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.sentinel)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != sentinelContent || st.Mode != unix.S_IFREG|0o644 || st.Nlink != 1 {
		t.Errorf("sentinel changed: %q mode %o nlink %d", b, st.Mode, st.Nlink)
	}
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

// node is what the tests compare of an extracted file.
type node struct {
	Type     string
	Mode     uint32 // permission bits incl. setuid/setgid/sticky
	UID, GID uint32
	Mtime    time.Time
	Target   string // symlink target
	Content  string
	Rdev     uint64
	Xattrs   map[string]string
}

// snapshot describes every file beneath root, keyed by relative path.
func snapshot(t testing.TB, root string) map[string]node {
	t.Helper()
	nodes := make(map[string]node)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{
			Mode:   st.Mode & 0o7777,
			UID:    st.Uid,
			GID:    st.Gid,
			Mtime:  time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
			Xattrs: xattrs(t, p),
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n.Type = "dir"
		case unix.S_IFREG:
			n.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Content = string(b)
		case unix.S_IFLNK:
			n.Type = "symlink"
			n.Mode = 0
			if n.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFIFO:
			n.Type = "fifo"
		case unix.S_IFCHR:
			n.Type = "char"
			n.Rdev = st.Rdev
		default:
			n.Type = "other"
		}
		nodes[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

func xattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var m map[string]string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[name] = string(val[:vn])
	}
	return m
}

func TestApplyRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t) // chown, trusted.* xattrs
	entries := []tarEntry{
		dirEntry("./", 0o700),
		dirEntry("bin/", 0o755),
		reg("bin/su", "su-binary", 0o4755),
		hardlink("bin/su2", "bin/su"),
		reg("bin/wall", "wall-binary", 0o2755).owner(0, 5),
		symlink("bin/sh", "/bin/busybox"),
		hardlink("bin/shlink", "bin/sh"),
		dirEntry("etc/", 0o755),
		reg("/etc/passwd", "root:x:0:0", 0o644),
		dirEntry("home/", 0o755),
		dirEntry("home/user/", 0o700).owner(1000, 1000),
		reg("home/user/notes", "notes", 0o640).owner(1000, 1000).xattr("user.comment", "hi"),
		symlink("home/user/link", "../../etc/passwd").owner(1000, 1000).mtime(testTime2),
		dirEntry("srv/", 0o2775).owner(0, 50).xattr("trusted.berth", "1"),
		dirEntry("tmp/", 0o1777),
		fifo("tmp/fifo", 0o620).owner(5, 6),
		dirEntry("fake/", 0o755).xattr("trusted.overlay.opaque", "y").xattr("user.overlay.opaque", "y"),
		reg("dup", "one", 0o644),
		reg("dup", "two", 0o600),
		dirEntry("d2/", 0o755),
		reg("d2/x", "x", 0o644),
		reg("d2", "now a file", 0o644),
		dirEntry("d3/", 0o700),
		reg("d3/keep", "keep", 0o644),
		dirEntry("d3/", 0o750).mtime(testTime2),
		symlink("s", "/outside-target"),
		dirEntry("s/", 0o755),
		reg("empty", "", 0o000),
	}
	l := newLayout(t)
	stats, err := Apply(context.Background(), l.root, bytes.NewReader(makeTar(t, entries...)))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	l.checkContained(t)

	dir := func(mode uint32) node { return node{Type: "dir", Mode: mode, Mtime: testTime} }
	file := func(content string, mode uint32) node {
		return node{Type: "file", Mode: mode, Content: content, Mtime: testTime}
	}
	sym := func(target string) node { return node{Type: "symlink", Target: target, Mtime: testTime} }
	su := file("su-binary", 0o4755)
	want := map[string]node{
		"bin":             dir(0o755),
		"bin/su":          su,
		"bin/su2":         su,
		"bin/wall":        {Type: "file", Mode: 0o2755, GID: 5, Content: "wall-binary", Mtime: testTime},
		"bin/sh":          sym("/bin/busybox"),
		"bin/shlink":      sym("/bin/busybox"),
		"etc":             dir(0o755),
		"etc/passwd":      file("root:x:0:0", 0o644),
		"home":            dir(0o755),
		"home/user":       {Type: "dir", Mode: 0o700, UID: 1000, GID: 1000, Mtime: testTime},
		"home/user/notes": {Type: "file", Mode: 0o640, UID: 1000, GID: 1000, Content: "notes", Mtime: testTime, Xattrs: map[string]string{"user.comment": "hi"}},
		"home/user/link":  {Type: "symlink", UID: 1000, GID: 1000, Target: "../../etc/passwd", Mtime: testTime2},
		"srv":             {Type: "dir", Mode: 0o2775, GID: 50, Mtime: testTime, Xattrs: map[string]string{"trusted.berth": "1"}},
		"tmp":             dir(0o1777),
		"tmp/fifo":        {Type: "fifo", Mode: 0o620, UID: 5, GID: 6, Mtime: testTime},
		"fake":            dir(0o755),
		"dup":             file("two", 0o600),
		"d2":              file("now a file", 0o644),
		"d3":              {Type: "dir", Mode: 0o750, Mtime: testTime2},
		"d3/keep":         file("keep", 0o644),
		"s":               dir(0o755),
		"empty":           file("", 0),
	}
	if diff := cmp.Diff(want, snapshot(t, l.root)); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}

	// Hard links share the inode.
	for link, target := range map[string]string{"bin/su2": "bin/su", "bin/shlink": "bin/sh"} {
		var a, b unix.Stat_t
		if err := unix.Lstat(filepath.Join(l.root, link), &a); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(filepath.Join(l.root, target), &b); err != nil {
			t.Fatal(err)
		}
		if a.Ino != b.Ino {
			t.Errorf("%s is not a hard link to %s", link, target)
		}
	}

	var wantBytes int64
	for _, e := range entries {
		wantBytes += int64(len(e.body))
	}
	// dirs bin etc home home/user srv tmp fake d2 d3 s; files su wall passwd
	// notes dup dup d2/x d2 d3/keep empty; symlinks sh link s; fifo.
	wantStats := Stats{Bytes: wantBytes, Inodes: 10 + 10 + 3 + 1}
	if diff := cmp.Diff(wantStats, stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestApplyImplicitParents(t *testing.T) {
	l := newLayout(t)
	stats, err := apply(context.Background(), l.root, bytes.NewReader(makeTar(t,
		reg("a/b/c/file", "data", 0o644).owner(os.Getuid(), os.Getgid()),
	)), testOptions())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		fi, err := os.Lstat(filepath.Join(l.root, d))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want a 0755 directory", d, fi.Mode())
		}
	}
	if want := (Stats{Bytes: 4, Inodes: 4}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
}

func TestApplyReadsToEOF(t *testing.T) {
	for _, walkOnly := range []bool{false, true} {
		l := newLayout(t)
		layer := makeTar(t, reg("f", "data", 0o644).owner(os.Getuid(), os.Getgid()))
		// Padding and junk after the end marker, as some tools write.
		layer = append(layer, bytes.Repeat([]byte{0}, 10240)...)
		layer = append(layer, "trailing junk"...)
		r := bytes.NewReader(layer)
		opts := testOptions()
		opts.walkOnly = walkOnly
		if _, err := apply(context.Background(), l.root, r, opts); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if r.Len() != 0 {
			t.Errorf("walkOnly=%v: %d bytes left unread", walkOnly, r.Len())
		}
	}
}

func TestApplyErrors(t *testing.T) {
	layer := makeTar(t, reg("f", strings.Repeat("x", 5000), 0o644).owner(os.Getuid(), os.Getgid()))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		prepare func(t *testing.T, root string)
		input   []byte
		wantIs  error
	}{
		{
			name:   "canceled",
			ctx:    canceled,
			input:  layer,
			wantIs: context.Canceled,
		},
		{
			name: "not empty",
			prepare: func(t *testing.T, root string) {
				if err := os.WriteFile(filepath.Join(root, "x"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			input:  layer,
			wantIs: errdefs.ErrFailedPrecondition,
		},
		{
			name:   "truncated data",
			input:  layer[:2048],
			wantIs: io.ErrUnexpectedEOF,
		},
		{
			name:   "garbage header",
			input:  bytes.Repeat([]byte("not a tar "), 100),
			wantIs: errdefs.ErrInvalidArgument,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			if tc.prepare != nil {
				tc.prepare(t, l.root)
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := apply(ctx, l.root, bytes.NewReader(tc.input), testOptions())
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("apply() = %v, want %v", err, tc.wantIs)
			}
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		_, err := Apply(context.Background(), filepath.Join(t.TempDir(), "nope"), bytes.NewReader(layer))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Apply() = %v, want ErrNotExist", err)
		}
	})
}

func TestApplyTooManyEntries(t *testing.T) {
	var entries []tarEntry
	for i := range 11 {
		entries = append(entries, dirEntry(strings.Repeat("d", i+1), 0o755))
	}
	l := newLayout(t)
	opts := testOptions()
	opts.maxEntries = 10
	_, err := apply(context.Background(), l.root, bytes.NewReader(makeTar(t, entries...)), opts)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "more than 10 entries") {
		t.Fatalf("apply() = %v, want too many entries", err)
	}
}

func TestApplyGzipPipeline(t *testing.T) {
	// The way the puller uses the package: Decompress then Apply.
	l := newLayout(t)
	layer := gzipBytes(t, makeTar(t,
		dirEntry("d/", 0o755).owner(os.Getuid(), os.Getgid()),
		reg("d/f", strings.Repeat("payload", 1<<18), 0o644).owner(os.Getuid(), os.Getgid()),
	))
	rc, comp, err := Decompress(bytes.NewReader(layer))
	if err != nil || comp != Gzip {
		t.Fatalf("Decompress = %v, %v", comp, err)
	}
	defer rc.Close()
	stats, err := apply(context.Background(), l.root, rc, testOptions())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if want := (Stats{Bytes: 7 << 18, Inodes: 2}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
}
