package runtime

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/test/testutil"
)

// layerTree makes files (name → content; a name ending in "/" is a
// directory) under dir, all with the same mtime.
func layerTree(t *testing.T, dir string, files map[string]string, mtime time.Time) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if n[len(n)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Directories' times last, deepest first: writing a child changes them.
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		os.Chtimes(filepath.Join(dir, n), mtime, mtime)
	}
	for _, n := range names {
		for d := filepath.Dir(filepath.Join(dir, n)); d != dir && len(d) > len(dir); d = filepath.Dir(d) {
			os.Chtimes(d, mtime, mtime)
		}
	}
}

func TestLayerChanges(t *testing.T) {
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	lower, upper := t.TempDir(), t.TempDir()
	layerTree(t, lower, map[string]string{
		"etc/passwd": "root\n", "etc/group": "root\n", "bin/sh": "sh", "tmp/": "", "usr/lib/x": "x",
	}, base)
	// A file added in a directory the image has, one changed, a new
	// directory tree, a mount point the runtime made (empty), and a
	// directory copied up unchanged (same mode and time as below).
	layerTree(t, upper, map[string]string{
		"tmp/new": "n", "etc/passwd": "root\nme\n", "data/a/b": "b", "etc/hosts": "", "usr/": "",
	}, base.Add(time.Hour))
	os.Chtimes(filepath.Join(upper, "usr"), base, base)

	got, err := LayerChanges(upper, []string{lower}, []string{"/etc/hosts", "/proc"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{"/data", ChangeAdd},
		{"/data/a", ChangeAdd},
		{"/data/a/b", ChangeAdd},
		{"/etc", ChangeModify},
		{"/etc/passwd", ChangeModify},
		{"/tmp", ChangeModify},
		{"/tmp/new", ChangeAdd},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestLayerChangesMountPointWithContent(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	layerTree(t, upper, map[string]string{"etc/hosts": "127.0.0.1 x\n"}, time.Now())
	got, err := LayerChanges(upper, []string{lower}, []string{"/etc/hosts"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{"/etc", ChangeAdd}, {"/etc/hosts", ChangeAdd}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a mount point with content of its own is a change (-want +got):\n%s", diff)
	}
}

func TestLayerChangesOnlyMountPoints(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	layerTree(t, lower, map[string]string{"etc/passwd": "root\n"}, time.Now().Add(-time.Hour))
	// The runtime made /etc/hosts and /etc/resolv.conf, copying /etc up.
	layerTree(t, upper, map[string]string{"etc/hosts": "", "etc/resolv.conf": "", "run/secrets/": ""}, time.Now())
	exclude := []string{"/etc/hosts", "/etc/resolv.conf", "/run/secrets"}
	got, err := LayerChanges(upper, []string{lower}, exclude)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a fresh container's layer shows changes: %v", got)
	}
	r, err := LayerTar(upper, exclude)
	if err != nil {
		t.Fatal(err)
	}
	if names := tarNames(t, r); len(names) != 0 {
		t.Errorf("a fresh container's layer has entries: %v", names)
	}
}

// tarNames lists the entries of a tar stream.
func tarNames(t *testing.T, r io.ReadCloser) map[string]byte {
	t.Helper()
	defer r.Close()
	out := map[string]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = hdr.Typeflag
	}
}

func TestLayerTar(t *testing.T) {
	upper := t.TempDir()
	layerTree(t, upper, map[string]string{"tmp/new": "n", "etc/hosts": "", "etc/passwd": "p"}, time.Now())
	r, err := LayerTar(upper, []string{"/etc/hosts"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]byte{"etc/": tar.TypeDir, "etc/passwd": tar.TypeReg, "tmp/": tar.TypeDir, "tmp/new": tar.TypeReg}
	if diff := cmp.Diff(want, tarNames(t, r)); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

// opaqueXattr marks a directory whose lower entries overlayfs hides.
const opaqueXattr = "trusted.overlay.opaque"

// TestLayerWhiteouts needs root: whiteouts are character devices 0/0 and
// the opaque mark a trusted.* xattr.
func TestLayerWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	lower, upper := t.TempDir(), t.TempDir()
	layerTree(t, lower, map[string]string{"etc/motd": "hi", "var/cache/a": "a", "var/cache/b": "b", "opt/": ""}, base)
	layerTree(t, upper, map[string]string{"etc/": "", "var/cache/c": "c", "opt/": ""}, base)
	if err := unix.Mknod(filepath.Join(upper, "etc/motd"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(upper, "opt/gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	// /var/cache was removed and made again: opaque.
	if err := unix.Lsetxattr(filepath.Join(upper, "var/cache"), opaqueXattr, []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc", "var", "var/cache", "opt"} {
		os.Chtimes(filepath.Join(upper, d), base, base)
	}

	got, err := LayerChanges(upper, []string{lower}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{"/etc", ChangeModify},
		{"/etc/motd", ChangeDelete},
		{"/opt", ChangeModify},
		{"/opt/gone", ChangeDelete},
		// /var has the same time as below: only its child is listed, as
		// docker lists it.
		{"/var/cache", ChangeModify},
		{"/var/cache/c", ChangeAdd},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	r, err := LayerTar(upper, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTar := map[string]byte{
		"etc/": tar.TypeDir, "etc/.wh.motd": tar.TypeReg,
		"opt/": tar.TypeDir, "opt/.wh.gone": tar.TypeReg,
		"var/": tar.TypeDir, "var/cache/": tar.TypeDir, "var/cache/.wh..wh..opq": tar.TypeReg, "var/cache/c": tar.TypeReg,
	}
	if diff := cmp.Diff(wantTar, tarNames(t, r)); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

// TestMountedLowers reads an overlay's layers back from its mount.
func TestMountedLowers(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	l1, l2 := filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	os.MkdirAll(l1, 0o755)
	os.MkdirAll(l2, 0o755)
	target := filepath.Join(dir, "merged")
	if err := rootfs.Mount(target, []string{l1, l2}, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), nil); err != nil {
		t.Fatal(err)
	}
	defer rootfs.Unmount(target)
	if diff := cmp.Diff([]string{l1, l2}, mountedLowers(target)); diff != "" {
		t.Errorf("lowers (-want +got):\n%s", diff)
	}
	if got := mountedLowers(dir); got != nil {
		t.Errorf("lowers of a directory that is no overlay: %v", got)
	}
}
