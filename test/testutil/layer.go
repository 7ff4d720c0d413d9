package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Created is the fixed timestamp of every image, history entry and tar
// entry built by this package, so that digests do not change between runs.
var Created = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// compression is how a layer blob is encoded.
type compression int

const (
	gzipCompression compression = iota
	zstdCompression
	noCompression
)

func (c compression) String() string {
	switch c {
	case gzipCompression:
		return "gzip"
	case zstdCompression:
		return "zstd"
	case noCompression:
		return "uncompressed"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// layerMediaType is the descriptor media type for a layer with compression c
// in a Docker schema 2 (oci false) or OCI manifest. Docker has no zstd media
// type; callers force OCI manifests for zstd (see WithZstd).
func layerMediaType(oci bool, c compression) types.MediaType {
	switch {
	case c == zstdCompression:
		return types.OCILayerZStd
	case oci && c == noCompression:
		return types.OCIUncompressedLayer
	case oci:
		return types.OCILayer
	case c == noCompression:
		return types.DockerUncompressedLayer
	default:
		return types.DockerLayer
	}
}

// memLayer is a v1.Layer whose blob is held in memory. Its digests are
// computed once, when it is built.
type memLayer struct {
	blob      []byte
	digest    v1.Hash
	diffID    v1.Hash
	comp      compression
	mediaType types.MediaType
}

var _ v1.Layer = (*memLayer)(nil)

func (l *memLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}

func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	switch l.comp {
	case gzipCompression:
		return gzip.NewReader(bytes.NewReader(l.blob))
	case zstdCompression:
		d, err := zstd.NewReader(bytes.NewReader(l.blob), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	default:
		return io.NopCloser(bytes.NewReader(l.blob)), nil
	}
}

// withMediaType returns a copy of l (sharing the blob) with media type mt.
func (l *memLayer) withMediaType(mt types.MediaType) *memLayer {
	c := *l
	c.mediaType = mt
	return &c
}

// compressWriter returns a writer compressing into w with c at a
// deterministic setting.
func compressWriter(w io.Writer, c compression) (io.WriteCloser, error) {
	switch c {
	case gzipCompression:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case zstdCompression:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	default:
		return nopWriteCloser{w}, nil
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// newMemLayer compresses the tar stream tarball with c.
func newMemLayer(tarball []byte, c compression) (*memLayer, error) {
	var blob bytes.Buffer
	zw, err := compressWriter(&blob, c)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarball); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &memLayer{
		blob:   blob.Bytes(),
		digest: sha256Hash(blob.Bytes()),
		diffID: sha256Hash(tarball),
		comp:   c,
	}, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}
}

// layerSpec describes one layer of a built image.
type layerSpec struct {
	// key identifies the tar content (and with the compression, the
	// cached layer).
	key string
	// createdBy goes into the image history.
	createdBy string
	// build returns the uncompressed tar stream.
	build func() ([]byte, error)
}

type layerCacheKey struct {
	key  string
	comp compression
}

type layerCacheEntry struct {
	once  sync.Once
	layer *memLayer
	err   error
}

// layerCache holds compressed layers by content key and compression, so that
// the busybox layers are tarred and compressed once per process.
var layerCache sync.Map // layerCacheKey -> *layerCacheEntry

// layer builds (or fetches from the cache) spec compressed with c and
// labelled with media type mt.
func (spec layerSpec) layer(c compression, mt types.MediaType) (*memLayer, error) {
	build := func() (*memLayer, error) {
		tb, err := spec.build()
		if err != nil {
			return nil, fmt.Errorf("building layer %q: %w", spec.createdBy, err)
		}
		return newMemLayer(tb, c)
	}
	v, _ := layerCache.LoadOrStore(layerCacheKey{spec.key, c}, &layerCacheEntry{})
	e := v.(*layerCacheEntry)
	e.once.Do(func() { e.layer, e.err = build() })
	if e.err != nil {
		return nil, e.err
	}
	return e.layer.withMediaType(mt), nil
}

// tarBuilder writes deterministic tar entries: fixed mtime, numeric owners
// only, names relative to the root as image layers conventionally use.
type tarBuilder struct {
	buf bytes.Buffer
	tw  *tar.Writer
	err error
}

func newTarBuilder() *tarBuilder {
	b := &tarBuilder{}
	b.tw = tar.NewWriter(&b.buf)
	return b
}

func (b *tarBuilder) header(h *tar.Header, content []byte) {
	if b.err != nil {
		return
	}
	if h.ModTime.IsZero() {
		h.ModTime = Created
	}
	h.Size = int64(len(content))
	if b.err = b.tw.WriteHeader(h); b.err != nil {
		b.err = fmt.Errorf("tar header %q: %w", h.Name, b.err)
		return
	}
	if _, b.err = b.tw.Write(content); b.err != nil {
		b.err = fmt.Errorf("tar content %q: %w", h.Name, b.err)
	}
}

// dir adds a directory; name gets a trailing slash as tar conventionally has.
func (b *tarBuilder) dir(name string, mode int64, uid, gid int) {
	if name[len(name)-1] != '/' {
		name += "/"
	}
	b.header(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid}, nil)
}

func (b *tarBuilder) file(name string, mode int64, uid, gid int, content string) {
	b.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid}, []byte(content))
}

func (b *tarBuilder) symlink(name, target string) {
	b.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

func (b *tarBuilder) hardlink(name, target string) {
	b.header(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o755}, nil)
}

// raw appends bytes outside the tar writer, for hand-made headers that
// archive/tar refuses to write. Entries written before are flushed first.
func (b *tarBuilder) raw(p []byte) {
	if b.err != nil {
		return
	}
	if b.err = b.tw.Flush(); b.err != nil {
		return
	}
	b.buf.Write(p)
}

func (b *tarBuilder) bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	if err := b.tw.Close(); err != nil {
		return nil, err
	}
	return b.buf.Bytes(), nil
}
