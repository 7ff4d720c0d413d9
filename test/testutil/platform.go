package testutil

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PlatformPath is the marker file of the images in MultiPlatformIndex.
const PlatformPath = "/platform"

// PlatformText is the content of PlatformPath in the image for p, e.g.
// "linux/amd64\n".
func PlatformText(p v1.Platform) string {
	return p.String() + "\n"
}

// OtherPlatform is the foreign platform of MultiPlatformIndex: linux/arm64,
// or linux/amd64 when the host is arm64.
func OtherPlatform() v1.Platform {
	if HostPlatform().Architecture == "arm64" {
		return v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return v1.Platform{OS: "linux", Architecture: "arm64"}
}

// MultiPlatformIndex returns an OCI image index (WithOCI is implied) with two
// images, in this order: one for OtherPlatform() and one for HostPlatform().
// Both are BusyboxImage (with opts) plus a fourth layer holding PlatformPath
// with PlatformText of their platform; they share the three busybox layers,
// so a pull of either transfers the same blobs for those. The foreign image's
// config names the foreign architecture but its /bin/busybox is the host's:
// it is meant to be selected against, not run.
func MultiPlatformIndex(t testing.TB, opts ...ImageOption) v1.ImageIndex {
	t.Helper()
	opts = append(opts[:len(opts):len(opts)], WithOCI())
	return multiPlatform(t, types.OCIImageIndex, opts)
}

// MultiPlatformManifestList is MultiPlatformIndex as a Docker manifest list
// of Docker schema 2 images. WithOCI and WithZstd are rejected.
func MultiPlatformManifestList(t testing.TB, opts ...ImageOption) v1.ImageIndex {
	t.Helper()
	o, err := newImageOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	if o.oci {
		t.Fatal("MultiPlatformManifestList: WithOCI and WithZstd contradict a Docker manifest list")
	}
	return multiPlatform(t, types.DockerManifestList, opts)
}

func multiPlatform(t testing.TB, mt types.MediaType, opts []ImageOption) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range []v1.Platform{OtherPlatform(), HostPlatform()} {
		img := mustImage(t, opts, p, platformLayer(p))
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt)
	if _, err := idx.Digest(); err != nil {
		t.Fatalf("building index: %v", err)
	}
	return idx
}

func platformLayer(p v1.Platform) layerSpec {
	return layerSpec{
		key:       "platform:" + p.String(),
		createdBy: "berth testutil: platform marker " + p.String(),
		build: func() ([]byte, error) {
			b := newTarBuilder()
			b.file("platform", 0o644, 0, 0, PlatformText(p))
			return b.bytes()
		},
	}
}
