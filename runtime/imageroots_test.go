package runtime

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// ImageRoots tells the image service (registered as the daemon does) which
// layers and images its containers use, so that GC keeps them and a
// docker-style delete refuses them.
func TestContainersHoldTheirImages(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := remote.NewResolver(remote.Config{DockerConfig: filepath.Join(dir, "none.json")})
	if err != nil {
		t.Fatal(err)
	}
	images, err := imageservice.New(imageservice.Options{Root: filepath.Join(dir, "images"), DB: db, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Options{DB: db, Images: images, Launcher: &Launcher{}, RootDir: dir, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	images.AddRoots(func(tx *store.Tx) (imageservice.Roots, error) {
		chains, ids, err := m.ImageRoots(tx)
		return imageservice.Roots{ChainIDs: chains, Images: ids}, err
	})

	img := store.Image{ID: digest.FromString("cfg")}
	err = db.Update(func(tx *store.Tx) error {
		if err := store.Put(tx, store.Images, img.ID.String(), img); err != nil {
			return err
		}
		return store.Put(tx, store.Containers, "c1", store.Container{ID: "c1", ImageID: img.ID,
			ChainID: digest.FromString("top"), VolumeChainIDs: []digest.Digest{digest.FromString("vol")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *store.Tx) error {
		chains, ids, err := m.ImageRoots(tx)
		if want := []digest.Digest{digest.FromString("top"), digest.FromString("vol")}; !slices.Equal(chains, want) || !slices.Equal(ids, []digest.Digest{img.ID}) {
			t.Errorf("ImageRoots = %v, %v; want %v, [%s]", chains, ids, want, img.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	used, err := images.InUse(ctx)
	if err != nil || used[img.ID] != 1 {
		t.Errorf("InUse = %v, %v; want %s used once", used, err, img.ID)
	}
	if _, err := images.Delete(ctx, img.ID.String(), false); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Delete of an image a container uses = %v, want ErrConflict", err)
	}
}
