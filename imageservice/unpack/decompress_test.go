package unpack

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func TestDecompress(t *testing.T) {
	payload := bytes.Repeat([]byte("berth layer payload "), 100_000)
	tests := []struct {
		name  string
		input []byte
		want  []byte
		comp  Compression
	}{
		{name: "plain", input: payload, want: payload, comp: None},
		{name: "gzip", input: gzipBytes(t, payload), want: payload, comp: Gzip},
		{name: "zstd", input: zstdBytes(t, payload), want: payload, comp: Zstd},
		{name: "gzip empty", input: gzipBytes(t, nil), want: []byte{}, comp: Gzip},
		{name: "empty", input: []byte{}, want: []byte{}, comp: None},
		{name: "one byte", input: []byte{0x1f}, want: []byte{0x1f}, comp: None},
		{name: "tar", input: makeTar(t, reg("a", "hello", 0o644)), want: makeTar(t, reg("a", "hello", 0o644)), comp: None},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, comp, err := Decompress(bytes.NewReader(tc.input))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			defer rc.Close()
			if comp != tc.comp {
				t.Errorf("compression = %v, want %v", comp, tc.comp)
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

func TestDecompressCorrupt(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
	}{
		{name: "gzip header only", input: []byte{0x1f, 0x8b}},
		{name: "gzip bad header", input: []byte{0x1f, 0x8b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{name: "zstd truncated", input: zstdBytes(t, []byte(strings.Repeat("x", 10000)))[:12]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, _, err := Decompress(bytes.NewReader(tc.input))
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil {
				t.Fatal("no error for corrupt input")
			}
		})
	}
}

func TestCompressionString(t *testing.T) {
	got := []string{None.String(), Gzip.String(), Zstd.String(), Compression(7).String()}
	want := []string{"none", "gzip", "zstd", "Compression(7)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String() (-want +got):\n%s", diff)
	}
}
