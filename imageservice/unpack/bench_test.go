package unpack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchLayer is a gzip layer of a few large and many small files of
// compressible data, and its uncompressed size.
func benchLayer(b *testing.B) ([]byte, int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"berth ", "layer ", "overlay ", "image ", "container ", "\n", "0123 ", "zstd "}
	text := func(n int) string {
		var buf bytes.Buffer
		for buf.Len() < n {
			buf.WriteString(words[rng.IntN(len(words))])
		}
		return buf.String()[:n]
	}
	uid, gid := os.Getuid(), os.Getgid()
	var entries []tarEntry
	for d := range 20 {
		dir := fmt.Sprintf("usr/lib/d%02d/", d)
		entries = append(entries, dirEntry(dir, 0o755).owner(uid, gid))
		for f := range 100 {
			entries = append(entries, reg(fmt.Sprintf("%sf%03d", dir, f), text(4<<10), 0o644).owner(uid, gid))
		}
		entries = append(entries, reg(dir+"big", text(4<<20), 0o755).owner(uid, gid))
	}
	raw := makeTar(b, append([]tarEntry{dirEntry("usr/", 0o755).owner(uid, gid), dirEntry("usr/lib/", 0o755).owner(uid, gid)}, entries...)...)
	return gzipBytes(b, raw), int64(len(raw))
}

// BenchmarkGunzip is the baseline: decompressing the layer to nowhere.
func BenchmarkGunzip(b *testing.B) {
	layer, size := benchLayer(b)
	b.SetBytes(size)
	for b.Loop() {
		rc, _, err := Decompress(bytes.NewReader(layer))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkApply decompresses and extracts the layer.
func BenchmarkApply(b *testing.B) {
	layer, size := benchLayer(b)
	b.SetBytes(size)
	parent := b.TempDir()
	i := 0
	for b.Loop() {
		dir := filepath.Join(parent, fmt.Sprint(i))
		i++
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		rc, _, err := Decompress(bytes.NewReader(layer))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := apply(context.Background(), dir, rc, testOptions()); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
