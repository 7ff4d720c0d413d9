package logs

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// Entry is one parsed record.
type Entry struct {
	Time    time.Time
	Stream  string // Stdout or Stderr
	Partial bool   // tag P: the line continues in the next record of Stream
	Content []byte // without the trailing "\n"; aliases the parsed line
}

// ErrMalformed is returned (wrapped) for a line that is not a CRI record.
var ErrMalformed = errors.New("malformed CRI log record")

// malformed wraps ErrMalformed as fmt.Errorf("%w: "+msg) would; the package
// does not use fmt, as the shim links it.
type malformed string

func (m malformed) Error() string { return ErrMalformed.Error() + ": " + string(m) }
func (m malformed) Unwrap() error { return ErrMalformed }

// Parse parses one record. line may or may not end with "\n". Content
// aliases line.
func Parse(line []byte) (Entry, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	var e Entry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, malformed("no timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, malformed("timestamp: " + err.Error())
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, malformed("no stream")
	}
	switch string(stream) {
	case Stdout, Stderr:
		e.Stream = string(stream)
	default:
		return e, malformed("unknown stream " + strconv.Quote(string(stream)))
	}
	// The tag and its separating space; "stdout F" with nothing after it is
	// accepted as an empty full line, as the kubelet does.
	if len(rest) == 0 || (len(rest) > 1 && rest[1] != ' ') {
		return e, malformed("no tag")
	}
	switch rest[0] {
	case TagFull:
	case TagPartial:
		e.Partial = true
	default:
		return e, malformed("unknown tag " + strconv.QuoteRune(rune(rest[0])))
	}
	if len(rest) > 1 {
		e.Content = rest[2:]
	} else {
		e.Content = []byte{}
	}
	e.Time = t
	return e, nil
}

// Line is a reassembled line of one stream.
type Line struct {
	Time    time.Time // of the first record of the line
	Stream  string
	Content []byte // without "\n"
}

// Reader reassembles P…P F records into whole lines, keeping the streams
// apart (a stderr record may sit between two halves of a stdout line).
type Reader struct {
	br      *bufio.Reader
	pending map[string]*Line
	maxLine int
}

// NewReader reads records from r. Reassembled lines longer than maxLine
// bytes (0 = no limit) are returned in pieces of maxLine bytes rather than
// growing without bound.
func NewReader(r io.Reader, maxLine int) *Reader {
	return &Reader{br: bufio.NewReader(r), pending: map[string]*Line{}, maxLine: maxLine}
}

// Next returns the next whole line. At the end of input, partial lines still
// pending are returned as they are, then io.EOF.
func (r *Reader) Next() (Line, error) {
	for {
		raw, err := r.br.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			for _, s := range []string{Stdout, Stderr} {
				if l := r.pending[s]; l != nil {
					delete(r.pending, s)
					return *l, nil
				}
			}
			return Line{}, err
		}
		e, perr := Parse(raw)
		if perr != nil {
			return Line{}, perr
		}
		l := r.pending[e.Stream]
		if l == nil {
			l = &Line{Time: e.Time, Stream: e.Stream}
		}
		l.Content = append(l.Content, e.Content...)
		if e.Partial && (r.maxLine <= 0 || len(l.Content) < r.maxLine) {
			r.pending[e.Stream] = l
			continue
		}
		delete(r.pending, e.Stream)
		return *l, nil
	}
}
