package netns

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/testutil"
)

// pinDir returns a directory for pins that is unmounted again (New makes
// it a mount point) before t.TempDir removes it.
func pinDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func TestNewDoRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	path, err := New(dir, "pod1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(path) })
	if path != filepath.Join(dir, "pod1") {
		t.Errorf("path = %s", path)
	}
	if !Exists(path) {
		t.Fatal("Exists = false after New")
	}
	if _, err := New(dir, "pod1"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second New: %v, want ErrAlreadyExists", err)
	}

	host, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	err = Do(path, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			t.Errorf("interfaces in new netns = %v, want only lo", ifs)
		}
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside == host {
		t.Errorf("Do ran in the host netns %s", host)
	}
	// Two Do calls see the same namespace: the pin holds it.
	var again string
	if err := Do(path, func() (err error) { again, err = os.Readlink("/proc/thread-self/ns/net"); return }); err != nil {
		t.Fatal(err)
	}
	if again != inside {
		t.Errorf("second Do in %s, first in %s", again, inside)
	}
	if now, _ := os.Readlink("/proc/thread-self/ns/net"); now != host {
		t.Errorf("caller's thread left in %s, want %s", now, host)
	}
	wantErr := errors.New("boom")
	if err := Do(path, func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do error = %v, want %v", err, wantErr)
	}

	for i := range 2 {
		if err := Remove(path); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if Exists(path) {
		t.Error("Exists = true after Remove")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file still there: %v", err)
	}
	if err := Do(path, func() error { return nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Do after Remove: %v, want ErrNotFound", err)
	}
}

func TestRemoveHalfMade(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	if err := Remove(filepath.Join(dir, "never-created")); err != nil {
		t.Errorf("Remove of a missing pin: %v", err)
	}
	// A crash between creating the pin file and mounting leaves a plain file.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if Exists(plain) {
		t.Error("Exists(plain file) = true")
	}
	if err := Remove(plain); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(plain); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plain file still there: %v", err)
	}
}

func TestNewManyAreDistinct(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	seen := map[string]bool{}
	for _, name := range []string{"a", "b", "c"} {
		p, err := New(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Remove(p) })
		var id string
		if err := Do(p, func() (err error) { id, err = os.Readlink("/proc/thread-self/ns/net"); return }); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Errorf("%s shares namespace %s", name, id)
		}
		seen[id] = true
	}
}

func TestInvalidName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b"} {
		if _, err := New(t.TempDir(), name); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(%q) = %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestExistsNoRoot(t *testing.T) {
	if Exists(filepath.Join(t.TempDir(), "missing")) {
		t.Error("Exists(missing) = true")
	}
	// Any namespace file counts, including our own.
	if !Exists("/proc/self/ns/net") {
		t.Error("Exists(/proc/self/ns/net) = false")
	}
}
