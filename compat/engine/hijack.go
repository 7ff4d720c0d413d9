package engine

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// hijack takes over the connection of an attach or exec start, as docker
// does: a client that asked to upgrade (Connection: Upgrade, Upgrade: tcp)
// gets 101 UPGRADED, others 200 OK, then the raw stream. The caller closes
// the connection; buffered bytes the client already sent are read from
// the returned reader.
func hijack(w http.ResponseWriter, r *http.Request, multiplexed bool) (net.Conn, io.Reader, error) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijacking the connection: %w", err)
	}
	contentType := "application/vnd.docker.raw-stream"
	if multiplexed {
		contentType = "application/vnd.docker.multiplexed-stream"
	}
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
	} else {
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
	}
	var in io.Reader = conn
	if rw != nil && rw.Reader.Buffered() > 0 {
		in = io.MultiReader(io.LimitReader(rw.Reader, int64(rw.Reader.Buffered())), conn)
	}
	return conn, in, nil
}

// streamWriters are the stdout and stderr of a stream to w: with a TTY
// (one stream, no framing) both write w as is; without, each write is
// framed as docker's multiplexed stream (stdcopy: an 8-byte header with
// the stream and the length, then the bytes), which stdcopy.StdCopy and
// every docker client split again. Writes are serialised.
func streamWriters(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if tty {
		l := &lockedWriter{mu: mu, w: w}
		return l, l
	}
	return &framedWriter{mu: mu, w: w, stream: stdcopy.Stdout}, &framedWriter{mu: mu, w: w, stream: stdcopy.Stderr}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// framedWriter writes each p as one frame of the multiplexed stream.
type framedWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream stdcopy.StdType
}

func (f *framedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var hdr [8]byte
	hdr[0] = byte(f.stream)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	if _, err := f.w.Write(p); err != nil {
		return 0, err
	}
	if fl, ok := f.w.(interface{ Flush() error }); ok {
		fl.Flush()
	}
	return len(p), nil
}

// flushWriter flushes an HTTP response after every write, for the
// streaming replies (logs -f, stats, events, pull progress).
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func newFlushWriter(w http.ResponseWriter) *flushWriter {
	return &flushWriter{w: w, rc: http.NewResponseController(w)}
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.rc.Flush()
	return n, err
}
