package unpack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a layer blob, as sniffed by Decompress.
type Compression int

// Compressions Decompress recognises.
const (
	None Compression = iota
	Gzip
	Zstd
)

// String returns the compression's name.
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

const (
	// readBufferSize is the buffer between the blob and the decompressor.
	readBufferSize = 1 << 20
	// zstdMaxWindow caps the window a zstd frame may ask for (and so the
	// memory a hostile frame can make us allocate): 128 MiB covers
	// "zstd --long" (2^27), far above what image tools write.
	zstdMaxWindow = 1 << 27
)

// Decompress sniffs the magic bytes of r and returns a reader of the
// uncompressed stream: gzip, zstd, or anything else passed through unchanged
// (a plain tar). Closing the returned reader releases the decompressor; it
// does not close r. Decompress may read ahead of what the returned reader has
// yielded, so a caller hashing r must drain the returned reader to EOF.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, readBufferSize)
	magic, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, None, fmt.Errorf("reading layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("opening gzip layer: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, Zstd, fmt.Errorf("opening zstd layer: %w", err)
		}
		return zr.IOReadCloser(), Zstd, nil
	}
	return io.NopCloser(br), None, nil
}
