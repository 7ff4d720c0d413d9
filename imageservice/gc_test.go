package imageservice

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/store"
)

func newTestService(t *testing.T) *Service {
	t.Helper()
	return newTestServiceWith(t, remote.Config{})
}

// newTestServiceWith is newTestService with registry settings. The tester's
// own docker config is never read.
func newTestServiceWith(t *testing.T, cfg remote.Config) *Service {
	t.Helper()
	root := t.TempDir()
	if cfg.DockerConfig == "" {
		cfg.DockerConfig = filepath.Join(root, "none.json")
	}
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	res, err := remote.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Root: root, DB: db, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addSnapshot records a fake unpacked layer, as a pull would.
func addSnapshot(t *testing.T, s *Service, chainID, parent digest.Digest) {
	t.Helper()
	h, dir, err := s.snaps.Temp()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "f"), []byte(chainID), 0o644)
	if err := s.commitSnapshot(h, store.Snapshot{ChainID: chainID, Parent: parent, DiffID: chainID, Size: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestGCMarksFromImagesLeasesAndRoots(t *testing.T) {
	s := newTestService(t)
	base, mid, top := digest.FromString("base"), digest.FromString("mid"), digest.FromString("top")
	orphan, leased, rooted := digest.FromString("orphan"), digest.FromString("leased"), digest.FromString("rooted")
	for _, c := range [][2]digest.Digest{{base, ""}, {mid, base}, {top, mid}, {orphan, ""}, {leased, ""}, {rooted, base}} {
		addSnapshot(t, s, c[0], c[1])
	}
	img := store.Image{ID: digest.FromString("cfg"), ChainIDs: []digest.Digest{base, mid}}
	s.db.Update(func(tx *store.Tx) error { return store.Put(tx, store.Images, img.ID.String(), img) })
	release := s.lease([]digest.Digest{leased})
	s.AddRoots(func(*store.Tx) (Roots, error) { return Roots{ChainIDs: []digest.Digest{rooted}}, nil })

	res, err := s.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Snapshots != 2 {
		t.Errorf("GC removed %d snapshots, want 2 (top, orphan)", res.Snapshots)
	}
	for _, c := range []digest.Digest{base, mid, leased, rooted} {
		if !s.hasSnapshot(c) {
			t.Errorf("GC removed a live snapshot")
		}
	}
	if s.hasSnapshot(top) || s.hasSnapshot(orphan) {
		t.Errorf("GC kept a dead snapshot")
	}
	release()
	s.GC(context.Background())
	if s.hasSnapshot(leased) {
		t.Error("a released lease still kept its snapshot")
	}
	dirs, _ := filepath.Glob(filepath.Join(s.snaps.Root(), "[0-9]*"))
	if len(dirs) != 3 {
		t.Errorf("%d snapshot dirs left, want 3 (base, mid, rooted)", len(dirs))
	}
}

func TestCommitSnapshotIsIdempotent(t *testing.T) {
	s := newTestService(t)
	c := digest.FromString("x")
	addSnapshot(t, s, c, "")
	addSnapshot(t, s, c, "")
	dirs, _ := filepath.Glob(filepath.Join(s.snaps.Root(), "[0-9]*"))
	tmp, _ := os.ReadDir(filepath.Join(s.snaps.Root(), "tmp"))
	if len(dirs) != 1 || len(tmp) != 0 {
		t.Errorf("two commits of one chain ID left %v and %d temp dirs", dirs, len(tmp))
	}
}

func TestLookup(t *testing.T) {
	s := newTestService(t)
	img := store.Image{ID: digest.FromString("cfg")}
	s.db.Update(func(tx *store.Tx) error {
		if err := s.setName(tx, &img, "docker.io/library/busybox:latest"); err != nil {
			return err
		}
		if err := s.setName(tx, &img, "docker.io/library/busybox@"+digest.FromString("m").String()); err != nil {
			return err
		}
		return store.Put(tx, store.Images, img.ID.String(), img)
	})
	ctx := context.Background()
	for _, name := range []string{img.ID.String(), img.ID.Encoded(), img.ID.Encoded()[:12], "busybox", "busybox:latest",
		"docker.io/library/busybox:latest", "busybox@" + digest.FromString("m").String()} {
		got, err := s.Get(ctx, name)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", name, got.ID, err)
		}
	}
	for _, name := range []string{"alpine", "busybox:1.0", digest.FromString("nope").String()} {
		if _, err := s.Get(ctx, name); err == nil {
			t.Errorf("Get(%q) found something", name)
		}
	}
	// A tag moves: the old image loses it.
	other := store.Image{ID: digest.FromString("cfg2")}
	s.db.Update(func(tx *store.Tx) error {
		if err := s.setName(tx, &other, "docker.io/library/busybox:latest"); err != nil {
			return err
		}
		return store.Put(tx, store.Images, other.ID.String(), other)
	})
	old, _ := s.Get(ctx, img.ID.String())
	if len(old.RepoTags) != 0 || len(old.RepoDigests) != 1 {
		t.Errorf("after retag, old image names = %v %v", old.RepoTags, old.RepoDigests)
	}
}
