package content

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestPutGet(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(data)
	if err := s.Put(d, data); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(d)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := s.Put(digest.FromString("other"), data); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Errorf("Put with the wrong digest = %v", err)
	}
	if _, err := s.Get(digest.FromString("nope")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get of a missing blob = %v", err)
	}
	if err := s.Put("sha256:../../etc", data); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Put with a hostile digest = %v", err)
	}
	n := 0
	s.Walk(func(digest.Digest) error { n++; return nil })
	if n != 1 {
		t.Errorf("Walk saw %d blobs", n)
	}
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(d); err != nil {
		t.Errorf("second Delete = %v", err)
	}
}

func TestDamagedBlobDetected(t *testing.T) {
	root := t.TempDir()
	s, _ := New(root)
	data := []byte("hello")
	d := digest.FromBytes(data)
	s.Put(d, data)
	os.WriteFile(filepath.Join(root, "blobs", "sha256", d.Encoded()), []byte("hellO"), 0o600)
	if _, err := s.Get(d); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Errorf("Get of a damaged blob = %v", err)
	}
}

// Usage runs while pulls write blobs: it counts blobs only and leaves a blob
// being written (atomicfile's temporary file) alone.
func TestUsageLeavesTempFiles(t *testing.T) {
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello")
	d := digest.FromBytes(data)
	if err := s.Put(d, data); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, "blobs", "sha256", "."+d.Encoded()+".tmp-1")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	bytes, inodes, err := s.Usage()
	if err != nil || inodes != 1 || bytes <= 0 {
		t.Errorf("Usage = %d bytes, %d inodes, %v; want one blob", bytes, inodes, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("Usage removed a blob being written: %v", err)
	}
}
