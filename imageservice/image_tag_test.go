package imageservice

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

const (
	bbLatest = "docker.io/library/busybox:latest"
	bbOne    = "docker.io/library/busybox:1"
	appV1    = "example.com/app:v1"
)

var bbDigest = "docker.io/library/busybox@" + digest.FromString("manifest").String()

// addImage records an image with one layer of its own and names, as a
// pull would.
func addImage(t *testing.T, s *Service, cfg string, names ...string) store.Image {
	t.Helper()
	layer := digest.FromString("layer-" + cfg)
	addSnapshot(t, s, layer, "")
	img := store.Image{ID: digest.FromString(cfg), ChainIDs: []digest.Digest{layer}}
	err := s.db.Update(func(tx *store.Tx) error {
		for _, n := range names {
			if err := s.setName(tx, &img, n); err != nil {
				return err
			}
		}
		return store.Put(tx, store.Images, img.ID.String(), img)
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// useImages registers a container made from each of imgs, as the
// container manager does: the image is in use, its top layer a root.
func useImages(s *Service, imgs ...store.Image) {
	var r Roots
	for _, img := range imgs {
		r.Images = append(r.Images, img.ID)
		r.ChainIDs = append(r.ChainIDs, img.ChainIDs...)
	}
	s.AddRoots(func(*store.Tx) (Roots, error) { return r, nil })
}

// runImage registers a running container made from img.
func runImage(s *Service, img store.Image) {
	r := Roots{Images: []digest.Digest{img.ID}, ChainIDs: img.ChainIDs,
		Users: []ImageUser{{Image: img.ID, Container: "0123456789abcdef", Running: true}}}
	s.AddRoots(func(*store.Tx) (Roots, error) { return r, nil })
}

// state is every image's names (image ID → sorted names; "" for none) as
// stored, after checking that the names index and the images agree.
func state(t *testing.T, s *Service) map[digest.Digest][]string {
	t.Helper()
	out := map[digest.Digest][]string{}
	err := s.db.View(func(tx *store.Tx) error {
		err := store.ForEach(tx, store.Images, func(_ string, img store.Image) error {
			names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
			sort.Strings(names)
			out[img.ID] = names
			for _, n := range names {
				if id, err := store.Get[string](tx, store.ImageNames, n); err != nil || id != img.ID.String() {
					t.Errorf("image %s has name %s, which the index points at %q (%v)", img.ID, n, id, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return store.ForEach(tx, store.ImageNames, func(n string, id string) error {
			if !contains(out[digest.Digest(id)], n) {
				t.Errorf("index name %s points at %s, which does not list it", n, id)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

func TestTag(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	a := addImage(t, s, "a", bbLatest, bbDigest)
	b := addImage(t, s, "b", appV1)

	// By ID prefix, normalised like docker.
	img, err := s.Tag(ctx, a.ID.Encoded()[:8], "myrepo")
	if err != nil {
		t.Fatal(err)
	}
	if !contains(img.RepoTags, "docker.io/library/myrepo:latest") {
		t.Errorf("Tag returned tags %v", img.RepoTags)
	}
	if got, err := s.Get(ctx, "myrepo:latest"); err != nil || got.ID != a.ID {
		t.Errorf("Get(myrepo:latest) = %v, %v", got.ID, err)
	}
	// Again: no change.
	if _, err := s.Tag(ctx, "busybox", "myrepo"); err != nil {
		t.Fatal(err)
	}
	// Moving busybox:latest to b leaves a with its other names; moving
	// app:v1 to a leaves b dangling but present.
	if _, err := s.Tag(ctx, b.ID.String(), "busybox"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tag(ctx, "myrepo", "example.com/app:v1"); err != nil {
		t.Fatal(err)
	}
	want := map[digest.Digest][]string{
		a.ID: {bbDigest, "docker.io/library/myrepo:latest", appV1},
		b.ID: {bbLatest},
	}
	sort.Strings(want[a.ID])
	if diff := cmp.Diff(want, state(t, s)); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if _, err := s.Tag(ctx, "busybox", "example.com/app:v1"); err != nil {
		t.Fatal(err)
	}
	want = map[digest.Digest][]string{a.ID: {bbDigest, "docker.io/library/myrepo:latest"}, b.ID: {bbLatest, appV1}}
	if diff := cmp.Diff(want, state(t, s)); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}

	before := state(t, s)
	for _, tc := range []struct {
		source, name string
		err          error
	}{
		{"busybox", "Busybox", errdefs.ErrInvalidArgument},
		{"busybox", "", errdefs.ErrInvalidArgument},
		{"busybox", "x@" + digest.FromString("m").String(), errdefs.ErrInvalidArgument},
		{"busybox", a.ID.String(), errdefs.ErrInvalidArgument},
		{"nosuch", "x", errdefs.ErrNotFound},
		{"", "x", errdefs.ErrInvalidArgument},
	} {
		if _, err := s.Tag(ctx, tc.source, tc.name); !errors.Is(err, tc.err) {
			t.Errorf("Tag(%q, %q) = %v, want %v", tc.source, tc.name, err, tc.err)
		}
	}
	if diff := cmp.Diff(before, state(t, s)); diff != "" {
		t.Errorf("failed tags changed names (-before +after):\n%s", diff)
	}
}

func TestUntag(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		names   []string // of the image
		inUse   bool
		running bool
		force   bool
		untag   string
		err     error
		want    []string // names left; nil with deleted
		remove  []string // DeleteResult.Untagged
		gone    bool     // image removed
	}{
		{name: "one of two tags", names: []string{bbLatest, bbOne, bbDigest}, untag: "busybox",
			want: []string{bbOne, bbDigest}, remove: []string{bbLatest}},
		{name: "last tag takes the repository's digests", names: []string{bbLatest, bbDigest}, untag: "busybox:latest",
			remove: []string{bbLatest, bbDigest}, gone: true},
		{name: "another repository keeps it", names: []string{bbLatest, bbDigest, appV1}, untag: "busybox",
			want: []string{appV1}, remove: []string{bbLatest, bbDigest}},
		{name: "by digest", names: []string{bbLatest, bbDigest}, untag: bbDigest,
			want: []string{bbLatest}, remove: []string{bbDigest}},
		{name: "in use, not the last name", names: []string{bbLatest, appV1}, inUse: true, untag: "busybox",
			want: []string{appV1}, remove: []string{bbLatest}},
		{name: "in use, last name", names: []string{bbLatest, bbDigest}, inUse: true, untag: "busybox",
			err: errdefs.ErrConflict, want: []string{bbLatest, bbDigest}},
		{name: "in use, last name, forced", names: []string{bbLatest, bbDigest}, inUse: true, force: true, untag: "busybox",
			remove: []string{bbLatest, bbDigest}, gone: true},
		{name: "running, last name, forced", names: []string{bbLatest, bbDigest}, running: true, force: true, untag: "busybox",
			want: []string{}, remove: []string{bbLatest, bbDigest}},
		{name: "unknown", names: []string{bbLatest}, untag: "busybox:2", err: errdefs.ErrNotFound, want: []string{bbLatest}},
		{name: "an ID is not a name", names: []string{bbLatest}, untag: digest.FromString("cfg").String(),
			err: errdefs.ErrInvalidArgument, want: []string{bbLatest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestService(t)
			img := addImage(t, s, "cfg", tc.names...)
			other := addImage(t, s, "other", "docker.io/library/other:latest")
			if tc.inUse {
				useImages(s, img)
			}
			if tc.running {
				runImage(s, img)
			}
			res, err := s.Untag(ctx, tc.untag, tc.force)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Untag(%q) = %v, want %v", tc.untag, err, tc.err)
			}
			wantRes := DeleteResult{Untagged: tc.remove}
			if tc.gone {
				wantRes.Deleted = img.ID
			}
			if diff := cmp.Diff(wantRes, res, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(DeleteResult{}, "Reclaimed")); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			want := map[digest.Digest][]string{other.ID: {"docker.io/library/other:latest"}}
			if !tc.gone {
				want[img.ID] = tc.want
			}
			if diff := cmp.Diff(want, state(t, s), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if got := s.hasSnapshot(img.ChainIDs[0]); got == (tc.gone && !tc.inUse) {
				t.Errorf("layer kept = %v, image removed = %v, in use = %v", got, tc.gone, tc.inUse)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		names   []string
		inUse   bool
		running bool
		force   bool
		err     string
		gone    bool
	}{
		{name: "one tag and its digest", names: []string{bbLatest, bbDigest}, gone: true},
		{name: "two tags", names: []string{bbLatest, bbOne, bbDigest}, err: "(must be forced) - image is referenced in multiple repositories"},
		{name: "no names", gone: true},
		{name: "two repositories", names: []string{bbLatest, appV1}, err: "(must be forced) - image is referenced in multiple repositories"},
		{name: "two repositories, forced", names: []string{bbLatest, appV1}, force: true, gone: true},
		{name: "in use", names: []string{bbLatest}, inUse: true, err: "(must be forced) - image is being used by stopped container"},
		{name: "in use, forced", names: []string{bbLatest}, inUse: true, force: true, gone: true},
		{name: "running", names: []string{bbLatest}, running: true, err: "(cannot be forced) - image is being used by running container 0123456789ab"},
		{name: "running, forced", names: []string{bbLatest}, running: true, force: true, err: "(cannot be forced)"},
		{name: "running, two repositories, forced", names: []string{bbLatest, appV1}, running: true, force: true, err: "(cannot be forced)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestService(t)
			img := addImage(t, s, "cfg", tc.names...)
			if tc.inUse {
				useImages(s, img)
			}
			if tc.running {
				runImage(s, img)
			}
			before := state(t, s)
			res, err := s.Delete(ctx, "sha256:"+img.ID.Encoded()[:10], tc.force)
			if tc.err == "" && err != nil || tc.err != "" && (!errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Delete = %v, want %q", err, tc.err)
			}
			after := state(t, s)
			if !tc.gone {
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a refused delete changed names (-before +after):\n%s", diff)
				}
				return
			}
			if len(after) != 0 {
				t.Errorf("left %v", after)
			}
			sort.Strings(res.Untagged)
			want := DeleteResult{Untagged: before[img.ID], Deleted: img.ID}
			if diff := cmp.Diff(want, res, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(DeleteResult{}, "Reclaimed")); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if (tc.inUse || tc.running) != s.hasSnapshot(img.ChainIDs[0]) {
				t.Errorf("layer kept = %v; in use = %v (a container's layer is a root)", !tc.inUse, tc.inUse)
			}
		})
	}
	t.Run("by name untags", func(t *testing.T) {
		s := newTestService(t)
		img := addImage(t, s, "cfg", bbLatest, appV1)
		res, err := s.Delete(ctx, "busybox", false)
		if err != nil || res.Deleted != "" || !cmp.Equal(res.Untagged, []string{bbLatest}) {
			t.Fatalf("Delete(busybox) = %+v, %v", res, err)
		}
		if res, err := s.Delete(ctx, "example.com/app:v1", false); err != nil || res.Deleted != img.ID {
			t.Fatalf("Delete(last name) = %+v, %v", res, err)
		}
		if _, err := s.Delete(ctx, "busybox", false); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Delete(gone) = %v, want ErrNotFound", err)
		}
	})
}

func TestInUse(t *testing.T) {
	s := newTestService(t)
	a, b := store.Image{ID: digest.FromString("a")}, store.Image{ID: digest.FromString("b")}
	useImages(s, a, b, a)
	useImages(s, a)
	got, err := s.InUse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[digest.Digest]int{a.ID: 3, b.ID: 1}, got); diff != "" {
		t.Errorf("InUse (-want +got):\n%s", diff)
	}
}

// A delete is one transaction: when the check of its users fails after
// the names were looked at, nothing of it is written.
func TestDeleteIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	img := addImage(t, s, "cfg", bbLatest, bbDigest)
	boom := errors.New("boom")
	s.AddRoots(func(*store.Tx) (Roots, error) { return Roots{}, boom })
	before := state(t, s)
	if _, err := s.Untag(ctx, "busybox", false); !errors.Is(err, boom) {
		t.Errorf("Untag = %v, want boom", err)
	}
	if _, err := s.Delete(ctx, img.ID.String(), false); !errors.Is(err, boom) {
		t.Errorf("Delete = %v, want boom", err)
	}
	if diff := cmp.Diff(before, state(t, s)); diff != "" {
		t.Errorf("failed deletes changed names (-before +after):\n%s", diff)
	}
	if !s.hasSnapshot(img.ChainIDs[0]) {
		t.Error("a failed delete collected the image's layer")
	}
}
