package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/logs"
)

// defaultDetachKeys are docker's: ctrl-p, ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// postContainerAttach is POST /containers/{id}/attach: the connection
// is hijacked and carries the container's stdio (framed per stream
// unless it has a TTY). The upgrade reply goes out only once the shim
// has the client attached, so that a client that starts the container
// next (docker run) misses none of its output. With a TTY, the detach
// keys (^P^Q, or ?detachKeys=) end the attach and leave the container
// running.
func (s *Server) postContainerAttach(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	keys := defaultDetachKeys
	if v := r.URL.Query().Get("detachKeys"); v != "" {
		if keys, err = parseDetachKeys(v); err != nil {
			return err
		}
	}
	stream, withLogs := boolValue(r, "stream"), boolValue(r, "logs")
	if c.Paused && stream {
		return errorf(errdefs.ErrConflict, "You cannot attach to a paused container, unpause it first")
	}
	tty := c.Process.TTY
	s.emitContainer(c, "attach", nil)
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("hijacking the connection: %w", err)
	}
	defer conn.Close()
	contentType := "application/vnd.docker.multiplexed-stream"
	if tty {
		contentType = "application/vnd.docker.raw-stream"
	}
	upgrade := r.Header.Get("Upgrade") != ""
	writeHeader := sync.OnceFunc(func() {
		if upgrade {
			fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
		} else {
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
		}
	})
	defer writeHeader()
	var in io.Reader = conn
	if rw != nil && rw.Reader.Buffered() > 0 {
		in = io.MultiReader(io.LimitReader(rw.Reader, int64(rw.Reader.Buffered())), conn)
	}
	stdout, stderr := streamWriters(conn, tty)
	if !boolValue(r, "stdout") {
		stdout = nil
	}
	if !boolValue(r, "stderr") {
		stderr = nil
	}
	if withLogs {
		writeHeader()
		err := s.containers.Logs(ctx, c.ID, runtime.LogOptions{Tail: -1}, func(l logs.Line) error {
			out := stdout
			if l.Stream == logs.Stderr {
				out = stderr
			}
			if out == nil {
				return nil
			}
			_, err := out.Write(append(l.Content, '\n'))
			return err
		})
		if err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return nil
		}
	}
	if !stream {
		return nil
	}
	var pending *pendingAttach
	if runtime.StateOf(c) == runtime.Exited {
		// docker start -a: the client attaches, then starts the
		// container, which gets a new process: wait for it.
		pending = s.attaching.add(c.ID)
		defer s.attaching.remove(c.ID, pending)
		writeHeader()
		select {
		case <-pending.relaunched:
		case <-ctx.Done():
			return nil
		}
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	var stdin io.Reader
	if boolValue(r, "stdin") {
		stdin = in
		if tty {
			stdin = &detachReader{r: in, keys: keys, detach: cancel, done: done}
		}
	}
	opts := runtime.AttachOpts{Stdin: stdin, Attached: func() {
		writeHeader()
		if pending != nil {
			pending.attachedOnce()
		}
	}}
	// Nil interfaces, not typed nils, for the streams not asked for.
	if stdout != nil {
		opts.Stdout = stdout
	}
	if stderr != nil {
		opts.Stderr = stderr
	}
	if err := s.containers.Attach(actx, c.ID, opts); err != nil && actx.Err() == nil {
		s.log.Debug("attach ended", "container", c.ID, "error", err)
	}
	if pending != nil {
		pending.attachedOnce() // failed: do not hold the start up
	}
	return nil
}

// attachWaiters are the attaches to exited containers, waiting for the
// next start: it relaunches the container, lets them attach to the new
// process, then starts it, so they miss none of its output.
type attachWaiters struct {
	mu sync.Mutex
	m  map[string][]*pendingAttach
}

type pendingAttach struct {
	relaunched   chan struct{}
	attached     chan struct{}
	attachedOnce func()
}

func (a *attachWaiters) add(id string) *pendingAttach {
	p := &pendingAttach{relaunched: make(chan struct{}), attached: make(chan struct{})}
	p.attachedOnce = sync.OnceFunc(func() { close(p.attached) })
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string][]*pendingAttach{}
	}
	a.m[id] = append(a.m[id], p)
	return p
}

func (a *attachWaiters) remove(id string, p *pendingAttach) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[id] = slices.DeleteFunc(a.m[id], func(q *pendingAttach) bool { return q == p })
	if len(a.m[id]) == 0 {
		delete(a.m, id)
	}
}

// relaunched tells the attaches waiting for container id that its new
// process is there, and waits (a bounded while) until they are attached.
func (a *attachWaiters) relaunched(ctx context.Context, id string) {
	a.mu.Lock()
	waiting := slices.Clone(a.m[id])
	delete(a.m, id)
	a.mu.Unlock()
	timeout := time.After(10 * time.Second)
	for _, p := range waiting {
		close(p.relaunched)
	}
	for _, p := range waiting {
		select {
		case <-p.attached:
		case <-timeout:
			return
		case <-ctx.Done():
			return
		}
	}
}

// parseDetachKeys reads docker's detach key list: "ctrl-p,ctrl-q" or
// single characters ("a,b").
func parseDetachKeys(v string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(v, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch >= 'A' && ch <= 'Z':
				out = append(out, ch-'A'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, errorf(errdefs.ErrInvalidArgument, "Invalid escape keys (%s) provided", v)
			}
		default:
			return nil, errorf(errdefs.ErrInvalidArgument, "Invalid escape keys (%s) provided", v)
		}
	}
	if len(out) == 0 {
		return nil, errorf(errdefs.ErrInvalidArgument, "Invalid escape keys (%s) provided", v)
	}
	return out, nil
}

// errDetached ends the stdin of an attach whose client typed the detach
// keys.
var errDetached = errors.New("detached")

// detachReader passes the client's stdin through until the detach keys
// arrive (held back while they might be starting), then calls detach and
// delivers nothing more: not even an end of input, which would close the
// container's stdin. It returns once done is closed.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	pending  []byte
	detached bool
	detach   func()
	done     <-chan struct{}
	buf      [32 << 10]byte
}

func (d *detachReader) Read(p []byte) (int, error) {
	for {
		if len(d.pending) > 0 {
			n := copy(p, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		if d.detached {
			d.detach()
			<-d.done
			return 0, errDetached
		}
		n, err := d.r.Read(d.buf[:])
		for _, b := range d.buf[:n] {
			if d.detached {
				break
			}
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.detached = true
				}
				continue
			}
			if d.matched > 0 {
				d.pending = append(d.pending, d.keys[:d.matched]...)
				d.matched = 0
				if b == d.keys[0] {
					d.matched = 1
					continue
				}
			}
			d.pending = append(d.pending, b)
		}
		if len(d.pending) > 0 || d.detached {
			continue
		}
		if err != nil {
			if d.matched > 0 {
				d.pending = append(d.pending, d.keys[:d.matched]...)
				d.matched = 0
				continue
			}
			return 0, err
		}
	}
}
