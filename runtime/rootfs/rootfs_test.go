package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/testutil"
)

func TestMountUnmount(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	lower1, lower2 := filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	os.MkdirAll(lower1, 0o755)
	os.MkdirAll(lower2, 0o755)
	os.WriteFile(filepath.Join(lower1, "a"), []byte("top"), 0o644)
	os.WriteFile(filepath.Join(lower2, "a"), []byte("bottom"), 0o644)
	os.WriteFile(filepath.Join(lower2, "b"), []byte("b"), 0o644)
	target, upper, work := filepath.Join(dir, "rootfs"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	if err := Mount(target, []string{lower1, lower2}, upper, work, nil); err != nil {
		t.Fatal(err)
	}
	if !Mounted(target) {
		t.Error("Mounted = false after Mount")
	}
	if b, _ := os.ReadFile(filepath.Join(target, "a")); string(b) != "top" {
		t.Errorf("a = %q, want the top layer's", b)
	}
	os.WriteFile(filepath.Join(target, "c"), []byte("new"), 0o644)
	if _, err := os.Stat(filepath.Join(upper, "c")); err != nil {
		t.Errorf("write did not land in upper: %v", err)
	}
	if _, err := os.Stat(filepath.Join(lower2, "c")); err == nil {
		t.Error("write reached a lower layer")
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if Mounted(target) {
		t.Error("still mounted")
	}
	if err := Unmount(target); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
	if err := Unmount(filepath.Join(dir, "nonexistent")); err != nil {
		t.Errorf("Unmount of a missing dir: %v", err)
	}
}

func TestMountRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := Mount(filepath.Join(dir, "t"), nil, filepath.Join(dir, "u"), filepath.Join(dir, "w"), nil); err == nil {
		t.Error("no layers accepted")
	}
	if err := Mount(filepath.Join(dir, "t"), []string{"/a:b"}, filepath.Join(dir, "u"), filepath.Join(dir, "w"), nil); err == nil {
		t.Error("':' in a layer path accepted")
	}
	long := make([]string, 200)
	for i := range long {
		long[i] = "/" + strings.Repeat("x", 30)
	}
	if err := Mount(filepath.Join(dir, "t"), long, filepath.Join(dir, "u"), filepath.Join(dir, "w"), nil); err == nil || !strings.Contains(err.Error(), "over the kernel") {
		t.Errorf("too many layers: %v", err)
	}
}

// TestUnmountAllBeforeRemove: whatever is mounted below a directory, in
// whatever order, UnmountAll leaves nothing mounted, so that removing the
// directory cannot reach what the mounts showed (here a "layer").
func TestUnmountAllBeforeRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer")
	os.MkdirAll(layer, 0o755)
	os.WriteFile(filepath.Join(layer, "f"), []byte("keep"), 0o644)
	bundle := filepath.Join(dir, "bundle")
	for _, d := range []string{"rootfs.lower/0", "tmp"} {
		os.MkdirAll(filepath.Join(bundle, d), 0o755)
	}
	if err := Stage(layer, filepath.Join(bundle, "rootfs.lower", "0"), StageOptions{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(bundle, "tmp"), "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	// A bind of the layer on top of a mount, and one stacked on itself.
	os.MkdirAll(filepath.Join(bundle, "tmp", "sub"), 0o755)
	for _, target := range []string{filepath.Join(bundle, "tmp", "sub"), filepath.Join(bundle, "tmp", "sub")} {
		if err := unix.Mount(layer, target, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := UnmountAll(bundle); err != nil {
		t.Fatal(err)
	}
	if left, err := MountsUnder(bundle); err != nil || len(left) != 0 {
		t.Fatalf("mounts left: %v %v", left, err)
	}
	if err := os.RemoveAll(bundle); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(layer, "f")); err != nil || string(b) != "keep" {
		t.Errorf("the layer lost its file: %q %v", b, err)
	}
	if err := UnmountAll(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("UnmountAll of a missing directory: %v", err)
	}
}
