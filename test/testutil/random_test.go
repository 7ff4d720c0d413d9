package testutil

import (
	"math"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestRandomLayersImage(t *testing.T) {
	const n, size = 3, 3<<20 + 1000
	img, err := RandomLayersImage(n, size, 0.5, 42)
	if err != nil {
		t.Fatal(err)
	}
	verifyImage(t, img)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.DockerManifestSchema2 || len(m.Layers) != n {
		t.Fatalf("manifest %s with %d layers", m.MediaType, len(m.Layers))
	}
	seen := map[v1.Hash]bool{}
	for i, l := range m.Layers {
		if l.MediaType != types.DockerLayer {
			t.Errorf("layer %d media type %s", i, l.MediaType)
		}
		if seen[l.Digest] {
			t.Errorf("layer %d duplicates another", i)
		}
		seen[l.Digest] = true
		// Half random, half text compressing about 30x: a little over half of size.
		if l.Size < size/2 || l.Size > size*3/4 {
			t.Errorf("layer %d: %d compressed bytes for %d bytes of content", i, l.Size, size)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var content int64
	for _, e := range layerEntries(t, layers[0]) {
		content += int64(len(e.content))
	}
	if content != size {
		t.Errorf("layer 0 holds %d bytes of files, want %d", content, size)
	}

	again, err := RandomLayersImage(n, size, 0.5, 42)
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, again) != mustDigest(t, img) {
		t.Error("same seed, different image")
	}
	other, err := RandomLayersImage(n, size, 0.5, 43)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range layerDigests(t, other) {
		if seen[d] {
			t.Errorf("seed 43 layer %d equals a seed 42 layer", i)
		}
	}

	reg := NewRegistry(t)
	reg.Push(t, "random:latest", img)
	verifyImage(t, pullImage(t, reg, "random:latest"))
}

func TestRandomLayersImageCompressibility(t *testing.T) {
	for _, tc := range []struct {
		fraction float64
		min, max float64 // compressed/content
	}{
		{0, 0.99, 1.01},
		{1, 0.005, 0.2},
	} {
		img, err := RandomLayersImage(1, 2<<20, tc.fraction, 7)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if r := float64(m.Layers[0].Size) / (2 << 20); r < tc.min || r > tc.max {
			t.Errorf("fraction %v: compression ratio %.3f, want in [%v, %v]", tc.fraction, r, tc.min, tc.max)
		}
	}
}

func TestRandomLayersImageErrors(t *testing.T) {
	for _, tc := range []struct {
		n        int
		size     int64
		fraction float64
	}{
		{0, 1, 0}, {1, -1, 0}, {1, 1, -0.1}, {1, 1, 1.1}, {1, 1, math.NaN()},
	} {
		if _, err := RandomLayersImage(tc.n, tc.size, tc.fraction, 1); err == nil {
			t.Errorf("RandomLayersImage(%d, %d, %v): no error", tc.n, tc.size, tc.fraction)
		}
	}
	if _, err := RandomLayersImage(2, 0, 0.5, 1); err != nil {
		t.Errorf("empty layers: %v", err)
	}
}

func BenchmarkRandomLayersImage(b *testing.B) {
	for b.Loop() {
		if _, err := RandomLayersImage(4, 50<<20, 0.5, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(4 * 50 << 20)
}
