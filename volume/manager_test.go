package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

func newManager(t *testing.T, root string) (*Manager, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{DB: db, Root: root})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return m, db
}

func TestCreateGetListRemove(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	m, db := newManager(t, root)
	defer db.Close()

	v, err := m.Create(ctx, CreateRequest{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Driver != DriverLocal || v.Labels["a"] != "b" || v.CreatedAt.IsZero() {
		t.Errorf("created %+v", v)
	}
	if want := filepath.Join(root, "volumes", "data", "_data"); m.Mountpoint(v) != want {
		t.Errorf("mountpoint %s, want %s", m.Mountpoint(v), want)
	}
	if err := os.WriteFile(filepath.Join(m.Mountpoint(v), "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Creating it again returns it, labels and data unchanged.
	again, err := m.Create(ctx, CreateRequest{Name: "data", Labels: map[string]string{"other": "1"}})
	if err != nil || again.Labels["a"] != "b" || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("create again: %+v, %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(m.Mountpoint(v), "f")); err != nil {
		t.Errorf("data lost by a second create: %v", err)
	}

	anon, err := m.Create(ctx, CreateRequest{Anonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) || !anon.Anonymous {
		t.Errorf("anonymous volume %+v", anon)
	}
	if _, ok := anon.Labels[LabelAnonymous]; !ok {
		t.Errorf("anonymous volume without %s: %v", LabelAnonymous, anon.Labels)
	}
	list, err := m.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}

	_, err = m.Get(ctx, "nosuch")
	if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "get nosuch: no such volume" {
		t.Errorf("get missing: %v", err)
	}
	if err := m.Remove(ctx, "nosuch", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("remove missing: %v", err)
	}
	if err := m.Remove(ctx, "nosuch", true); err != nil {
		t.Errorf("remove missing with force: %v", err)
	}
	if err := m.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "volumes", "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data left after remove: %v", err)
	}
	if _, err := m.Get(ctx, "data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("get removed: %v", err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	m, db := newManager(t, t.TempDir())
	defer db.Close()
	for _, tc := range []struct {
		req  CreateRequest
		want string
	}{
		{CreateRequest{Name: "a"}, "create a: volume name is too short, names should be at least two alphanumeric characters"},
		{CreateRequest{Name: "a/b"}, `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{CreateRequest{Name: "_x"}, `create _x: "_x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{CreateRequest{Name: "v1", Options: map[string]string{"size": "1"}}, `create v1: invalid option: "size"`},
		{CreateRequest{Name: "v1", Options: map[string]string{"type": "tmpfs"}}, `create v1: missing required option: "device"`},
		{CreateRequest{Name: "v1", Options: map[string]string{"o": "bind"}}, `create v1: missing required option: "device"`},
	} {
		_, err := m.Create(ctx, tc.req)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != tc.want {
			t.Errorf("create %+v: %v, want %q", tc.req, err, tc.want)
		}
	}
	if _, err := m.Create(ctx, CreateRequest{Name: "v1", Driver: "nfs"}); !errors.Is(err, errdefs.ErrNotFound) ||
		err.Error() != `create v1: error looking up volume plugin nfs: plugin "nfs" not found` {
		t.Errorf("create with a driver berth lacks: %v", err)
	}
	if list, _ := m.List(ctx); len(list) != 0 {
		t.Errorf("bad requests made volumes: %v", list)
	}
}

func TestRemoveRefusesAVolumeInUse(t *testing.T) {
	ctx := context.Background()
	m, db := newManager(t, t.TempDir())
	defer db.Close()
	if _, err := m.Create(ctx, CreateRequest{Name: "used"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, CreateRequest{Name: "free"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error {
		return store.Put(tx, store.Containers, "c1", store.Container{ID: "c1", Mounts: []store.Mount{
			{Destination: "/data", Source: "/x", Volume: "used"}, {Destination: "/bind", Source: "/y"},
		}})
	}); err != nil {
		t.Fatal(err)
	}
	users, err := m.Users(ctx)
	if err != nil || len(users) != 1 || len(users["used"]) != 1 || users["used"][0] != "c1" {
		t.Errorf("users %v, %v", users, err)
	}
	for _, force := range []bool{false, true} {
		err := m.Remove(ctx, "used", force)
		if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "remove used: volume is in use - [c1]" {
			t.Errorf("remove in use (force %v): %v", force, err)
		}
	}
	if _, err := m.Get(ctx, "used"); err != nil {
		t.Errorf("refused remove lost the record: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "used", "_data")); err != nil {
		t.Errorf("refused remove lost the data: %v", err)
	}
	if err := m.Remove(ctx, "free", false); err != nil {
		t.Error(err)
	}
}

// TestNewFinishesInterruptedWork plays the states a crash can leave: an
// empty directory without a record (create), trash whose record is gone
// (remove committed) and trash whose record survived (remove not
// committed).
func TestNewFinishesInterruptedWork(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	m, db := newManager(t, root)
	if _, err := m.Create(ctx, CreateRequest{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	vols := filepath.Join(root, "volumes")
	os.WriteFile(filepath.Join(vols, "kept", "_data", "f"), []byte("x"), 0o644)
	if err := os.Rename(filepath.Join(vols, "kept"), filepath.Join(vols, trashPrefix+"kept")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(vols, "halfmade", "_data"), 0o755)
	os.MkdirAll(filepath.Join(vols, trashPrefix+"gone", "_data"), 0o755)
	os.WriteFile(filepath.Join(vols, trashPrefix+"gone", "_data", "f"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(vols, "stray", "_data"), 0o755)
	os.WriteFile(filepath.Join(vols, "stray", "_data", "f"), []byte("x"), 0o644)
	db.Close()

	m, db = newManager(t, root)
	defer db.Close()
	entries, _ := os.ReadDir(vols)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "kept" || names[1] != "stray" {
		t.Errorf("volumes dir after recovery: %v, want [kept stray]", names)
	}
	if _, err := os.Stat(filepath.Join(vols, "kept", "_data", "f")); err != nil {
		t.Errorf("restored volume lost its data: %v", err)
	}
	if list, _ := m.List(ctx); len(list) != 1 {
		t.Errorf("records %v", list)
	}
}

func TestParseMountOptions(t *testing.T) {
	flags, data, err := parseMountOptions("size=64m,uid=1000,ro,nosuid,rw")
	if err != nil || data != "size=64m,uid=1000" || flags != mountFlags["nosuid"].flag {
		t.Errorf("flags %#x data %q err %v", flags, data, err)
	}
	flags, data, _ = parseMountOptions("bind")
	if data != "" || flags != mountFlags["bind"].flag {
		t.Errorf("bind: flags %#x data %q", flags, data)
	}
}
