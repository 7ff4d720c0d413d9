package unpack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/testutil"
)

func TestApplyWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t) // mknod, trusted.* xattrs, mount
	lower := []tarEntry{
		dirEntry("a/", 0o755),
		reg("a/keep", "keep", 0o644),
		reg("a/gone", "gone", 0o644),
		dirEntry("a/gonedir/", 0o755),
		reg("a/gonedir/f", "f", 0o644),
		dirEntry("b/", 0o755),
		reg("b/old", "old", 0o644),
		dirEntry("c/", 0o755),
		reg("c/file", "file", 0o644),
		dirEntry("d/", 0o755),
		reg("d/visible", "visible", 0o644),
		reg("top", "top", 0o644),
	}
	upper := []tarEntry{
		dirEntry("a/", 0o755),
		reg("a/.wh.gone", "", 0o644),
		reg("a/.wh.gonedir", "", 0o644),
		reg("a/.wh..wh.plnk", "", 0o644), // AUFS metadata: ignored
		dirEntry("b/", 0o755),
		reg("b/.wh..wh..opq", "", 0o644),
		reg("b/new", "new", 0o644),
		// c is not listed: the opaque marker creates it.
		reg("c/.wh..wh..opq", "", 0o644),
		// A hostile image cannot make d opaque through an xattr.
		dirEntry("d/", 0o755).xattr("trusted.overlay.opaque", "y"),
		reg(".wh.top", "", 0o644),
	}
	l := newLayout(t)
	lowerDir := filepath.Join(l.root, "lower")
	upperDir := filepath.Join(l.root, "upper")
	merged := filepath.Join(l.root, "merged")
	for _, d := range []string{lowerDir, upperDir, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := Apply(ctx, lowerDir, bytes.NewReader(makeTar(t, lower...))); err != nil {
		t.Fatalf("Apply lower: %v", err)
	}
	stats, err := Apply(ctx, upperDir, bytes.NewReader(makeTar(t, upper...)))
	if err != nil {
		t.Fatalf("Apply upper: %v", err)
	}
	// dirs a b d c, file b/new, whiteouts a/gone a/gonedir top.
	if want := (Stats{Bytes: 3, Inodes: 8}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}

	// The upper layer in overlayfs form.
	got := snapshot(t, upperDir)
	for p, n := range got {
		if n.Type == "char" {
			n.Mtime = time.Time{} // whiteouts keep their creation time
			got[p] = n
		}
	}
	whiteout := node{Type: "char", Rdev: 0}
	opaque := map[string]string{"trusted.overlay.opaque": "y"}
	want := map[string]node{
		"a":         {Type: "dir", Mode: 0o755, Mtime: testTime},
		"a/gone":    whiteout,
		"a/gonedir": whiteout,
		"b":         {Type: "dir", Mode: 0o755, Mtime: testTime, Xattrs: opaque},
		"b/new":     {Type: "file", Mode: 0o644, Content: "new", Mtime: testTime},
		"c":         {Type: "dir", Mode: 0o755, Mtime: got["c"].Mtime, Xattrs: opaque},
		"d":         {Type: "dir", Mode: 0o755, Mtime: testTime},
		"top":       whiteout,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("upper layer (-want +got):\n%s", diff)
	}

	// And overlayfs reads it as intended.
	opts := "lowerdir=" + upperDir + ":" + lowerDir
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	defer func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	wantMerged := map[string]node{
		"a":         {Type: "dir", Mode: 0o755, Mtime: testTime},
		"a/keep":    {Type: "file", Mode: 0o644, Content: "keep", Mtime: testTime},
		"b":         {Type: "dir", Mode: 0o755, Mtime: testTime, Xattrs: opaque},
		"b/new":     {Type: "file", Mode: 0o644, Content: "new", Mtime: testTime},
		"c":         {Type: "dir", Mode: 0o755, Mtime: got["c"].Mtime, Xattrs: opaque},
		"d":         {Type: "dir", Mode: 0o755, Mtime: testTime},
		"d/visible": {Type: "file", Mode: 0o644, Content: "visible", Mtime: testTime},
	}
	gotMerged := snapshot(t, merged)
	// overlayfs hides its own xattrs from the merged view.
	for p, n := range gotMerged {
		delete(n.Xattrs, "trusted.overlay.opaque")
		if len(n.Xattrs) == 0 {
			n.Xattrs = nil
		}
		gotMerged[p] = n
	}
	for p, n := range wantMerged {
		n.Xattrs = nil
		wantMerged[p] = n
	}
	if diff := cmp.Diff(wantMerged, gotMerged); diff != "" {
		t.Errorf("merged view (-want +got):\n%s", diff)
	}
}

// TestApplyWhiteoutReplaces checks whiteouts and later entries replace each
// other like any two entries with the same name.
func TestApplyWhiteoutReplaces(t *testing.T) {
	testutil.RequiresRoot(t) // mknod
	l := newLayout(t)
	_, err := Apply(context.Background(), l.root, bytes.NewReader(makeTar(t,
		reg("f", "x", 0o644),
		reg(".wh.f", "", 0o644),
		reg(".wh.g", "", 0o644),
		reg("g", "back", 0o644),
	)))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := snapshot(t, l.root)
	if got["f"].Type != "char" || got["g"].Type != "file" {
		t.Errorf("f = %+v, g = %+v; want a whiteout and a file", got["f"], got["g"])
	}
	l.checkContained(t)
}
