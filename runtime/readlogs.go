package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/logs"
)

// LogOptions select what Logs reads of a container's log.
type LogOptions struct {
	// Follow keeps reading what the container writes until it stops
	// running (or ctx ends).
	Follow bool
	// Since and Until bound the lines' times (zero: unbounded); Until
	// is exclusive, Since inclusive.
	Since, Until time.Time
	// Tail is how many of the last lines to start with; negative: all.
	Tail int
}

// followPoll is how often a followed log is checked for growth while
// the container runs and writes nothing.
const followPoll = 100 * time.Millisecond

// Logs calls fn with each whole line (P records reassembled) of the
// container's log, in order. A container without a log file (never
// started, or made without one) has no lines.
func (m *Manager) Logs(ctx context.Context, id string, o LogOptions, fn func(logs.Line) error) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if c.LogPath == "" {
		return fmt.Errorf("container %s has no log: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	f, err := os.Open(c.LogPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	lr := &lineReader{br: bufio.NewReader(f), pending: map[string]*logs.Line{}}
	emit := func(l logs.Line) error {
		if !o.Since.IsZero() && l.Time.Before(o.Since) || !o.Until.IsZero() && !l.Time.Before(o.Until) {
			return nil
		}
		return fn(l)
	}
	// What is there now (the last Tail lines of it).
	var ring []logs.Line
	for {
		l, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if o.Tail < 0 {
			if err := emit(l); err != nil {
				return err
			}
			continue
		}
		if o.Tail == 0 {
			continue
		}
		l.Content = bytes.Clone(l.Content)
		if len(ring) == o.Tail {
			ring = ring[1:]
		}
		ring = append(ring, l)
	}
	for _, l := range ring {
		if err := emit(l); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		changed := m.changes.next(c.ID)
		cur, err := m.Get(ctx, c.ID)
		running := err == nil && StateOf(cur) == Running
		// Read to the end; once the container is not running, the shim
		// has written everything (it drains before it records the exit).
		for {
			l, err := lr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if err := emit(l); err != nil {
				return err
			}
		}
		if !running || !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// lineReader reads CRI records from a file that may still grow: a
// record without its newline yet is kept until the rest arrives.
type lineReader struct {
	br      *bufio.Reader
	partial []byte
	pending map[string]*logs.Line
}

// next returns the next whole line, or io.EOF when the file has no
// further complete one (yet).
func (r *lineReader) next() (logs.Line, error) {
	for {
		raw, err := r.br.ReadBytes('\n')
		if err == io.EOF {
			r.partial = append(r.partial, raw...)
			return logs.Line{}, io.EOF
		}
		if err != nil {
			return logs.Line{}, err
		}
		if len(r.partial) > 0 {
			raw = append(r.partial, raw...)
			r.partial = nil
		}
		e, err := logs.Parse(raw)
		if err != nil {
			continue // a torn or foreign line: skip it, as the kubelet does
		}
		l := r.pending[e.Stream]
		if l == nil {
			l = &logs.Line{Time: e.Time, Stream: e.Stream}
		}
		l.Content = append(l.Content, e.Content...)
		if e.Partial {
			r.pending[e.Stream] = l
			continue
		}
		delete(r.pending, e.Stream)
		return *l, nil
	}
}
