package unpack

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary bytes to Apply as a tar stream and checks that
// nothing appears outside the layer directory. Without root, chown, mknod and
// trusted.* xattrs failing with EPERM are tolerated. The seed corpus in
// testdata/fuzz/FuzzApply holds the hostile layers of hostileCases; rewrite it
// with BERTH_WRITE_SEED_CORPUS=1 go test -run TestWriteSeedCorpus.
func FuzzApply(f *testing.F) {
	f.Add(makeTar(f,
		dirEntry("d/", 0o755),
		reg("d/f", "data", 0o4755),
		symlink("d/l", "../outside"),
		hardlink("d/h", "d/f"),
		fifo("p", 0o644),
		reg("d/.wh.x", "", 0o644),
		reg("d/.wh..wh..opq", "", 0o644),
	))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := newLayout(t)
		opts := applyOptions{rootless: os.Geteuid() != 0, maxEntries: 10_000}
		_, _ = apply(context.Background(), l.root, bytes.NewReader(data), opts)
		l.checkContained(t)
		if opts.rootless {
			makeRemovable(t, l.root)
		}
	})
}

// makeRemovable gives the owner access to every directory beneath root, so
// that t.TempDir can clean up after a layer with 0000 directories.
func makeRemovable(t *testing.T, root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
}

// TestWriteSeedCorpus writes the hostile layers into the fuzz seed corpus.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("BERTH_WRITE_SEED_CORPUS") != "1" {
		t.Skip("set BERTH_WRITE_SEED_CORPUS=1 to rewrite testdata/fuzz/FuzzApply")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzApply")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, tc := range hostileCases() {
		// An absolute target that cannot exist; relative cases reach
		// the fuzz layout's outside directory.
		data := tc.layer(t, "/nonexistent-berth-fuzz-outside")
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		name := filepath.Join(dir, fmt.Sprintf("hostile-%02d", i))
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
