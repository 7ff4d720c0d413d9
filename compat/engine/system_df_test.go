package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/store"
)

func TestImagesUsage(t *testing.T) {
	base, mid, a, b := digest.FromString("base"), digest.FromString("mid"), digest.FromString("a"), digest.FromString("b")
	sizes := map[digest.Digest]int64{base: 100, mid: 20, a: 5, b: 7}
	imgs := []store.Image{
		{ID: digest.FromString("A"), ChainIDs: []digest.Digest{base, mid, a}, RepoTags: []string{"docker.io/library/app:1"}},
		{ID: digest.FromString("B"), ChainIDs: []digest.Digest{base, mid, b}},
		{ID: digest.FromString("C"), ChainIDs: []digest.Digest{base}},
	}
	cs := []store.Container{{ImageID: imgs[0].ID}, {ImageID: imgs[0].ID}, {ImageID: imgs[2].ID}}
	got, total := (&Server{}).imagesUsage(imgs, cs, sizes)
	if total != 132 {
		t.Errorf("layers size %d, want 132 (each layer once)", total)
	}
	type row struct {
		Size, Shared, Containers int64
		Tags                     []string
	}
	var rows []row
	for _, s := range got {
		rows = append(rows, row{s.Size, s.SharedSize, s.Containers, s.RepoTags})
	}
	want := []row{{125, 120, 2, []string{"app:1"}}, {127, 120, 0, []string{}}, {100, 100, 1, []string{}}}
	if d := cmp.Diff(want, rows); d != "" {
		t.Errorf("images (-want +got):\n%s", d)
	}
	du := diskUsage{images: got, layersSize: total}
	if u := imageUsage(du, false); u.ActiveCount != 2 || u.Reclaimable != 7 || u.TotalCount != 3 || u.Items != nil {
		t.Errorf("image usage: %+v, want 2 active, 7 bytes reclaimable, no items", u)
	}
}
