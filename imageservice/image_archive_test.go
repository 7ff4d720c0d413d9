package imageservice

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"
	v1tarball "github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/test/testutil"
)

// layerTar is a layer of regular files.
func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A pulled image keeps its blobs: pushed elsewhere it keeps its manifest
// digest, saved and loaded into another store it keeps its ID, and an
// image made on it (commit) saves and loads with it.
func TestPushSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := testutil.NewRegistry(t)
	want := reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	s := newTestService(t)
	bb, err := s.Pull(ctx, reg.Ref("busybox:latest"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tag(ctx, bb.ID.String(), reg.Ref("copy:v1")); err != nil {
		t.Fatal(err)
	}
	var statuses []string
	res, err := s.Push(ctx, reg.Ref("copy:v1"), PushOptions{Progress: func(p Progress) { statuses = append(statuses, p.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest.String() != want.String() {
		t.Errorf("pushed digest %s, the pulled manifest is %s", res.Digest, want)
	}
	if d, err := gremote.Head(mustRef(t, reg.Ref("copy:v1")), reg.RemoteOptions()...); err != nil || d.Digest != want {
		t.Errorf("registry has copy:v1 at %v (%v), want %s", d, err, want)
	}
	// The registry has busybox's layers (copy:v1 is the same image).
	if len(statuses) == 0 || statuses[len(statuses)-1] != StatusLayerExists {
		t.Errorf("push progress %v, want it to end with %s", statuses, StatusLayerExists)
	}

	child, err := s.Create(ctx, CreateRequest{Parent: bb.ID.String(), Layer: bytes.NewReader(layerTar(t, map[string]string{"etc/made": "here\n"})),
		Config: v1.Config{Cmd: []string{"cat", "/etc/made"}}, Comment: "made", Name: "example.com/child:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(child.ChainIDs) != len(bb.ChainIDs)+1 {
		t.Fatalf("child has %d layers, parent %d", len(child.ChainIDs), len(bb.ChainIDs))
	}
	cfg, err := s.Config(child)
	if err != nil || cfg.History[len(cfg.History)-1].Comment != "made" || len(cfg.RootFS.DiffIDs) != len(child.ChainIDs) {
		t.Fatalf("child config %+v, %v", cfg, err)
	}

	var archive bytes.Buffer
	if err := s.Save(ctx, &archive, []string{"example.com/child:1", reg.Ref("busybox:latest")}); err != nil {
		t.Fatal(err)
	}
	m, err := v1tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(archive.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	var tags [][]string
	for _, d := range m {
		tags = append(tags, d.RepoTags)
	}
	if len(tags) != 2 {
		t.Errorf("archive manifest tags %v, want two images", tags)
	}
	if err := s.Save(ctx, io.Discard, []string{"nosuch:1"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Save(nosuch) = %v, want ErrNotFound", err)
	}

	// Saved by ID (docker save $(docker images -q)): no names, and
	// still several images in one archive.
	var byID bytes.Buffer
	if err := s.Save(ctx, &byID, []string{child.ID.String(), bb.ID.Encoded()[:12]}); err != nil {
		t.Fatal(err)
	}
	s3 := newTestService(t)
	loaded, err := s3.Load(ctx, &byID, nil)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := map[string]int{}
	for _, l := range loaded {
		gotIDs[l.ID.String()] = len(l.Names)
	}
	if diff := cmp.Diff(map[string]int{child.ID.String(): 0, bb.ID.String(): 0}, gotIDs); diff != "" {
		t.Errorf("loaded by ID (-want +got):\n%s", diff)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(archive.Bytes())
	zw.Close()
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", archive.Bytes()}, {"gzip", gz.Bytes()}} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := newTestService(t)
			loaded, err := s2.Load(ctx, bytes.NewReader(tc.data), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, l := range loaded {
				got[l.ID.String()] = l.Names
			}
			wantLoaded := map[string][]string{child.ID.String(): {"example.com/child:1"}, bb.ID.String(): {reg.Ref("busybox:latest")}}
			if diff := cmp.Diff(wantLoaded, got); diff != "" {
				t.Errorf("loaded (-want +got):\n%s", diff)
			}
			img, err := s2.Get(ctx, "example.com/child:1")
			if err != nil {
				t.Fatal(err)
			}
			dirs, err := s2.SnapshotDirs(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dirs[0], "etc/made")); err != nil || string(b) != "here\n" {
				t.Errorf("top layer etc/made = %q, %v", b, err)
			}
			// Loaded again, the same images; and saved again, loadable.
			if again, err := s2.Load(ctx, bytes.NewReader(tc.data), nil); err != nil || len(again) != 2 {
				t.Errorf("second load = %v, %v", again, err)
			}
			if err := s2.Save(ctx, io.Discard, []string{img.ID.String()}); err != nil {
				t.Errorf("saving a loaded image: %v", err)
			}
		})
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Archives with hostile layers are refused and record nothing; nothing
// is written outside the store.
func TestLoadRefusesHostileArchives(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []testutil.HostileKind{testutil.DotDot, testutil.Absolute, testutil.SymlinkEscape, testutil.HardlinkEscape} {
		t.Run(kind.String(), func(t *testing.T) {
			os.MkdirAll(testutil.EscapeDir, 0o755)
			img := testutil.HostileImage(t, kind)
			tag, _ := name.NewTag("hostile:1")
			var buf bytes.Buffer
			if err := tarball.Write(tag, img, &buf); err != nil {
				t.Fatal(err)
			}
			s := newTestService(t)
			_, err := s.Load(ctx, &buf, nil)
			if kind == testutil.Absolute && err == nil {
				// Confined: the file lands inside the layer.
				img, gerr := s.Get(ctx, "hostile:1")
				if gerr != nil {
					t.Fatal(gerr)
				}
				dirs, _ := s.SnapshotDirs(ctx, img)
				if _, err := os.Stat(filepath.Join(dirs[0], "etc/escape")); err != nil {
					t.Errorf("absolute entry not confined to the layer: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Load = %v, want ErrInvalidArgument", err)
			}
			imgs, _ := s.List(ctx, "")
			if len(imgs) != 0 {
				t.Errorf("a refused archive recorded %d images", len(imgs))
			}
			if _, err := os.Stat(filepath.Join(testutil.EscapeDir, "file")); err == nil {
				t.Errorf("%s escaped to %s", kind, testutil.EscapeDir)
			}
			// What the load left unrecorded is garbage: one collection
			// and no snapshot but the good layers' remains.
			if _, err := s.GC(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			s.db.View(func(tx *store.Tx) error {
				return store.ForEach(tx, store.Snapshots, func(string, store.Snapshot) error { n++; return nil })
			})
			if n != 0 {
				t.Errorf("%d snapshots left after GC", n)
			}
		})
	}
}

// Import: one layer, no parent, the config as given.
func TestCreateBaseImage(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	img, err := s.Create(ctx, CreateRequest{Layer: bytes.NewReader(layerTar(t, map[string]string{"hello": "world"})),
		Config: v1.Config{Cmd: []string{"/hello"}, Env: []string{"A=1"}}, Comment: "Imported from -", Name: "imported:v1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(cfg.Config.Cmd, []string{"/hello"}) || len(cfg.History) != 1 || cfg.History[0].Comment != "Imported from -" || cfg.OS != "linux" {
		t.Errorf("config %+v", cfg)
	}
	if got, err := s.Get(ctx, "imported:v1"); err != nil || got.ID != img.ID {
		t.Errorf("Get(imported:v1) = %v, %v", got.ID, err)
	}
	if _, err := s.Create(ctx, CreateRequest{Layer: bytes.NewReader([]byte("not a tar at all, just text that is long enough"))}); err == nil {
		t.Error("Create accepted a layer that is not a tar")
	}
	// The layer blob is kept and the image saves.
	if err := s.Save(ctx, io.Discard, []string{"imported:v1"}); err != nil {
		t.Errorf("Save: %v", err)
	}
}
