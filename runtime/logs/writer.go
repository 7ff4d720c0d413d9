// Package logs writes and reads the CRI container log format that the
// kubelet (and `crictl logs`, `kubectl logs`) consume:
//
//	2006-01-02T15:04:05.999999999Z07:00 stdout F text\n
//
// one record per line: an RFC 3339 timestamp with nanoseconds, the stream
// (stdout or stderr), a tag (F for a full line, P for a partial one whose
// continuation follows in the next record of the same stream) and the bytes
// of the line without its "\n". See
// https://github.com/kubernetes/design-proposals-archive/blob/main/node/kubelet-cri-logging.md.
//
// Choices made here, where the format leaves room:
//   - A line longer than MaxLineSize is split into P records of exactly
//     MaxLineSize bytes followed by one F record with the rest (which is
//     never empty: a line of exactly k*MaxLineSize bytes ends with an F record
//     of MaxLineSize bytes, not an empty F).
//   - Output that has no "\n" yet is held back (up to MaxLineSize) until the
//     newline arrives, as containerd does; an unterminated chunk left when the
//     stream closes is written as F (containerd writes it as P; the kubelet
//     accepts both). The F keeps a reader that reassembles P records from
//     waiting for a continuation that never comes.
//   - Bytes are copied verbatim: a "\r" before the "\n" (terminal output) is
//     kept.
package logs

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"time"
)

// Stream names as they appear in a record.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Tags of a record.
const (
	TagFull    = 'F'
	TagPartial = 'P'
)

// DefaultMaxLineSize is the longest line content written as one record.
const DefaultMaxLineSize = 16 << 10

// Writer appends CRI log records to one file shared by both streams. Each
// record is written with one write(2) under a mutex, so records of stdout
// and stderr interleave but never tear, and Reopen never splits a record
// across two files.
type Writer struct {
	path    string
	maxLine int
	now     func() time.Time

	mu  sync.Mutex
	f   *os.File // nil when path is ""
	buf []byte   // scratch for one record, reused under mu
	err error    // first write error, sticky until Reopen
}

// Option configures a Writer.
type Option func(*Writer)

// WithMaxLineSize sets the longest line content of one record (values < 1
// mean DefaultMaxLineSize).
func WithMaxLineSize(n int) Option {
	return func(w *Writer) {
		if n > 0 {
			w.maxLine = n
		}
	}
}

// WithClock replaces time.Now, for byte-exact tests.
func WithClock(now func() time.Time) Option { return func(w *Writer) { w.now = now } }

// Open opens (creating, appending) the log file at path. An empty path gives
// a Writer that discards everything.
func Open(path string, opts ...Option) (*Writer, error) {
	w := &Writer{path: path, maxLine: DefaultMaxLineSize, now: time.Now}
	for _, o := range opts {
		o(w)
	}
	if path != "" {
		f, err := openFile(path)
		if err != nil {
			return nil, err
		}
		w.f = f
	}
	return w, nil
}

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// Reopen closes the file and opens path again, so that after a rotation
// (rename, then Reopen) new records go to a fresh file. Records written
// before Reopen returns are in the old file, whole.
func (w *Writer) Reopen() error {
	if w.path == "" {
		return nil
	}
	f, err := openFile(w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.f
	w.f, w.err = f, nil
	w.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file. Streams must be closed first to flush partial lines.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// writeRecord writes one record. It is the only place that touches the file.
func (w *Writer) writeRecord(stream string, tag byte, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		if w.path == "" {
			return nil
		}
		return os.ErrClosed
	}
	b := w.now().AppendFormat(w.buf[:0], time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, content...)
	b = append(b, '\n')
	if cap(b) <= 2*w.maxLine+128 {
		w.buf = b // keep the scratch buffer, but never a runaway one
	}
	if _, err := w.f.Write(b); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Stream returns a writer for one stream (Stdout or Stderr) that turns the
// bytes written to it into records. A StreamWriter is not safe for
// concurrent use; use one per stream, each fed by one goroutine.
func (w *Writer) Stream(name string) *StreamWriter {
	return &StreamWriter{w: w, name: name}
}

// StreamWriter splits one stream into records; see the package comment for
// the rules.
type StreamWriter struct {
	w      *Writer
	name   string
	held   []byte // content without "\n", at most w.maxLine bytes
	closed bool
}

// ErrStreamClosed is returned by Write after Close.
var ErrStreamClosed = errors.New("log stream closed")

// Write consumes p, writing every complete record. It always reports len(p)
// consumed unless the stream is closed; a file error (disk full) is returned
// but the data is dropped rather than blocking the container.
func (s *StreamWriter) Write(p []byte) (int, error) {
	if s.closed {
		return 0, ErrStreamClosed
	}
	n := len(p)
	max := s.w.maxLine
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for len(p) > 0 {
		line, rest, terminated := bytes.Cut(p, []byte{'\n'})
		p = rest
		// P records whenever more than max bytes are pending (exactly max
		// is a whole line if "\n" follows, now or in a later Write).
		for len(s.held)+len(line) > max {
			take := max - len(s.held)
			keep(s.record(TagPartial, line[:take]))
			line = line[take:]
		}
		if !terminated {
			s.held = append(s.held, line...) // hold back until the "\n"
			break
		}
		keep(s.record(TagFull, line))
	}
	return n, firstErr
}

// record writes the held bytes followed by tail as one record and empties
// the held bytes.
func (s *StreamWriter) record(tag byte, tail []byte) error {
	if len(s.held) == 0 {
		return s.w.writeRecord(s.name, tag, tail)
	}
	s.held = append(s.held, tail...)
	err := s.w.writeRecord(s.name, tag, s.held)
	s.held = s.held[:0]
	return err
}

// Close flushes an unterminated last line as an F record.
func (s *StreamWriter) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.held) == 0 {
		return nil
	}
	err := s.w.writeRecord(s.name, TagFull, s.held)
	s.held = nil
	return err
}
