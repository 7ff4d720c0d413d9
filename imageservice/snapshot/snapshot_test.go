package snapshot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLifecycle(t *testing.T) {
	root := t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	h, fsDir, err := d.Temp()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fsDir, "f"), make([]byte, 10000), 0o644)
	os.Link(filepath.Join(fsDir, "f"), filepath.Join(fsDir, "g"))
	if err := d.Commit(h, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(7), "f")); err != nil {
		t.Fatal(err)
	}
	bytes, inodes, err := Usage(d.Path(7))
	if err != nil {
		t.Fatal(err)
	}
	if inodes != 2 || bytes < 10000 {
		t.Errorf("Usage = %d bytes, %d inodes; want >=10000 bytes, 2 inodes (dir + one hard-linked file)", bytes, inodes)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}

	// A leftover temp layer and an unrecorded numbered dir are cleaned.
	d.Temp()
	os.MkdirAll(filepath.Join(root, "9", "fs"), 0o755)
	removed, err := d.Clean(map[uint64]bool{7: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("Clean removed %v", removed)
	}
	if _, err := os.Stat(d.Path(7)); err != nil {
		t.Errorf("Clean removed a kept snapshot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "9")); !os.IsNotExist(err) {
		t.Errorf("unrecorded snapshot still there: %v", err)
	}
	if err := d.Remove(7); err != nil {
		t.Fatal(err)
	}
}
