package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// randomFileSize is the size of the files in RandomLayersImage layers.
const randomFileSize = 1 << 20

// RandomLayersImage returns a Docker schema 2 image of n gzip layers for
// benchmarks. Each layer is a tar stream of about size bytes of file content
// (files of up to 1 MiB named bench/<layer>/<file>.bin); in every file the
// first (1-compressibleFraction) of the bytes are random and the rest are
// repetitive text (which gzip shrinks about 30 times), so the compressed
// size is roughly size*(1-compressibleFraction). Everything is
// derived from seed: the same arguments give the same digests.
//
// Layers are built in parallel and compressed with gzip at its fastest level;
// their compressed blobs are kept in memory (about n*size bytes at most) and
// their digests computed once. The image has no busybox and is not meant to
// be run: its config is linux/runtime.GOARCH with Env DefaultEnv() and no
// command.
func RandomLayersImage(n int, size int64, compressibleFraction float64, seed int64) (v1.Image, error) {
	switch {
	case n < 1:
		return nil, fmt.Errorf("RandomLayersImage: need at least one layer, got %d", n)
	case size < 0:
		return nil, fmt.Errorf("RandomLayersImage: negative size %d", size)
	case !(compressibleFraction >= 0 && compressibleFraction <= 1):
		return nil, fmt.Errorf("RandomLayersImage: compressible fraction %v not in [0, 1]", compressibleFraction)
	}

	layers := make([]*memLayer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			layers[i], errs[i] = randomLayer(i, size, compressibleFraction, seed)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	built := make([]historyLayer, n)
	for i, l := range layers {
		built[i] = historyLayer{layer: l, createdBy: fmt.Sprintf("berth testutil: random layer %d", i)}
	}
	o := defaultImageOptions()
	o.config = v1.Config{Env: DefaultEnv()}
	return assembleImage(o, HostPlatform(), built)
}

// randomLayer builds layer i of RandomLayersImage, hashing the tar stream
// (diffID) and the gzip stream (digest) as they are written.
func randomLayer(i int, size int64, fraction float64, seed int64) (*memLayer, error) {
	var key [32]byte
	copy(key[:], "berth-testutil-random-layers....")
	binary.LittleEndian.PutUint64(key[0:8], uint64(seed))
	binary.LittleEndian.PutUint64(key[8:16], uint64(i))
	rng := rand.NewChaCha8(key)

	var blob bytes.Buffer
	blob.Grow(int(float64(size)*(1-fraction)) + int(float64(size)*fraction/4) + 64<<10)
	digest := sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(&blob, digest), gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	diffID := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diffID))

	pattern := textPattern(i, seed)
	buf := make([]byte, 64<<10)
	dir := fmt.Sprintf("bench/%03d/", i)
	hdr := func(h *tar.Header) error {
		h.ModTime = Created
		return tw.WriteHeader(h)
	}
	if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: "bench/", Mode: 0o755}); err != nil {
		return nil, err
	}
	if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
		return nil, err
	}
	for f, left := 0, size; left > 0; f++ {
		fsize := min(left, randomFileSize)
		left -= fsize
		if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s%05d.bin", dir, f), Mode: 0o644, Size: fsize}); err != nil {
			return nil, err
		}
		random := int64(float64(fsize) * (1 - fraction))
		for random > 0 {
			c := min(random, int64(len(buf)))
			rng.Read(buf[:c])
			if _, err := tw.Write(buf[:c]); err != nil {
				return nil, err
			}
			random -= c
		}
		for text := fsize - int64(float64(fsize)*(1-fraction)); text > 0; {
			c := min(text, int64(len(pattern)))
			if _, err := tw.Write(pattern[:c]); err != nil {
				return nil, err
			}
			text -= c
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &memLayer{
		blob:      blob.Bytes(),
		digest:    hashOf(digest),
		diffID:    hashOf(diffID),
		comp:      gzipCompression,
		mediaType: types.DockerLayer,
	}, nil
}

// textPattern is 64 KiB of numbered lines, distinct per layer and seed.
func textPattern(layer int, seed int64) []byte {
	var b bytes.Buffer
	for line := 0; b.Len() < 64<<10; line++ {
		fmt.Fprintf(&b, "berth benchmark seed=%d layer=%d line=%06d the quick brown fox jumps over the lazy dog\n", seed, layer, line)
	}
	return b.Bytes()[:64<<10]
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}
