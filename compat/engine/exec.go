package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// Exec instances live in the door's memory only, as in dockerd: a daemon
// restart forgets them (the processes they started are the container's
// and die with it). An instance is made by POST /containers/{id}/exec,
// run once by POST /exec/{id}/start, and kept after its exit so that the
// client can read the exit code (GET /exec/{id}/json); exited instances
// are dropped after execRetention, and with their container.

// execRetention is how long an exited exec instance stays inspectable.
const execRetention = 10 * time.Minute

func (s *Server) execRoutes() {
	s.route("POST", "/containers/{name}/exec", s.execCreate)
	s.route("POST", "/exec/{id}/start", s.execStart)
	s.route("POST", "/exec/{id}/resize", s.execResize)
	s.route("GET", "/exec/{id}/json", s.execInspect)
}

// execs holds the exec instances by id.
type execs struct {
	mu sync.Mutex
	m  map[string]*execInstance
}

// execInstance is one exec: its request, then its run.
type execInstance struct {
	id          string
	containerID string
	req         container.ExecCreateRequest

	mu       sync.Mutex
	started  bool // start was asked for (it runs at most once)
	running  bool
	exitCode *int
	pid      int
	exited   time.Time
	// ready closes once the process runs (or failed to); resizes wait for it.
	ready     chan struct{}
	readyOnce sync.Once
	resize    chan runtime.TermSize
}

func (e *execInstance) markReady() { e.readyOnce.Do(func() { close(e.ready) }) }

func (x *execs) add(e *execInstance) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]*execInstance{}
	}
	now := time.Now()
	for id, old := range x.m {
		old.mu.Lock()
		stale := !old.exited.IsZero() && now.Sub(old.exited) > execRetention
		old.mu.Unlock()
		if stale {
			delete(x.m, id)
		}
	}
	x.m[e.id] = e
}

func (x *execs) get(id string) (*execInstance, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.m[id]; ok {
		return e, nil
	}
	return nil, errorf(errdefs.ErrNotFound, "No such exec instance: %s", id)
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return errorf(errdefs.ErrInvalidArgument, "No exec command specified")
	}
	if runtime.StateOf(c) != runtime.Running {
		return errorf(errdefs.ErrConflict, "container %s is not running", c.ID)
	}
	if c.Paused {
		return errorf(errdefs.ErrConflict, "container %s is paused, unpause the container before exec", c.ID)
	}
	if req.DetachKeys != "" {
		if _, err := parseDetachKeys(req.DetachKeys); err != nil {
			return err
		}
	}
	e := &execInstance{
		id: idgen.New(), containerID: c.ID, req: req,
		ready: make(chan struct{}), resize: make(chan runtime.TermSize, 4),
	}
	s.execs.add(e)
	s.emitContainer(c, "exec_create: "+strings.Join(req.Cmd, " "), map[string]string{"execID": e.id})
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: e.id})
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	e, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), e.containerID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	switch {
	case e.exitCode != nil:
		e.mu.Unlock()
		return errorf(errdefs.ErrConflict, "cannot start exec %s: exec has already run", e.id)
	case e.started:
		e.mu.Unlock()
		return errorf(errdefs.ErrConflict, "cannot start exec %s: exec is already running", e.id)
	}
	if runtime.StateOf(c) != runtime.Running {
		e.mu.Unlock()
		return errorf(errdefs.ErrConflict, "container %s is not running", c.ID)
	}
	if c.Paused {
		e.mu.Unlock()
		return errorf(errdefs.ErrConflict, "container %s is paused, unpause the container before exec", c.ID)
	}
	e.started = true
	e.mu.Unlock()

	tty := e.req.Tty
	opts := runtime.ExecOpts{
		Cmd: e.req.Cmd, TTY: tty, Env: e.req.Env, User: e.req.User,
		WorkingDir: e.req.WorkingDir, Privileged: e.req.Privileged, Resize: e.resize,
		Started: func(pid int) {
			e.mu.Lock()
			e.pid = pid
			e.running = true
			e.mu.Unlock()
			e.markReady()
		},
	}
	if tty && !hasEnv(opts.Env, "TERM") {
		opts.Env = append(opts.Env, "TERM=xterm")
	}
	if size := req.ConsoleSize; size != nil && tty {
		e.resize <- runtime.TermSize{Height: uint16(size[0]), Width: uint16(size[1])}
	} else if size := e.req.ConsoleSize; size != nil && tty {
		e.resize <- runtime.TermSize{Height: uint16(size[0]), Width: uint16(size[1])}
	}
	s.emitContainer(c, "exec_start: "+strings.Join(e.req.Cmd, " "), map[string]string{"execID": e.id})

	if req.Detach {
		// The process outlives the request: it ends with the container.
		go s.runExec(context.WithoutCancel(r.Context()), c, e, opts)
		select {
		case <-e.ready:
		case <-time.After(10 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}

	conn, in, err := hijack(w, r, !tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Output to a client that went away (or detached) is dropped, so that
	// the process never blocks on it.
	stdout, stderr := streamWriters(&forgivingWriter{w: conn}, tty)
	if e.req.AttachStdout {
		opts.Stdout = stdout
	}
	if e.req.AttachStderr {
		opts.Stderr = stderr
	}
	detached := make(chan struct{})
	detach := sync.OnceFunc(func() { close(detached) })
	done := make(chan struct{})
	defer close(done)
	if e.req.AttachStdin {
		opts.Stdin = in
		if tty {
			keys := defaultDetachKeys
			if e.req.DetachKeys != "" {
				keys, _ = parseDetachKeys(e.req.DetachKeys)
			}
			opts.Stdin = &detachReader{r: in, keys: keys, detach: detach, done: done}
		}
	}
	// The client going away (its connection closing) or detaching does
	// not end the process: docker keeps it running.
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s.runExec(context.WithoutCancel(r.Context()), c, e, opts)
	}()
	select {
	case <-finished:
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	case <-detached:
	}
	return nil
}

// forgivingWriter writes to w until a write fails, then drops what it is
// given without an error.
type forgivingWriter struct {
	mu     sync.Mutex
	w      io.Writer
	broken bool
}

func (f *forgivingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.broken {
		if _, err := f.w.Write(p); err != nil {
			f.broken = true
		}
	}
	return len(p), nil
}

// runExec runs the exec to its end and records the exit.
func (s *Server) runExec(ctx context.Context, c store.Container, e *execInstance, opts runtime.ExecOpts) {
	code, err := s.containers.Exec(ctx, c.ID, opts)
	if err != nil {
		s.log.Warn("exec failed", "container", c.ID[:12], "exec", e.id[:12], "error", err)
		// The runtime's own failures reached the client's stderr from
		// the runtime itself; berth's are told here, in docker's words.
		msg := err.Error()
		if e.req.User != "" && errors.Is(err, errdefs.ErrInvalidArgument) {
			msg = fmt.Sprintf("unable to find user %s: no matching entries in passwd file", e.req.User)
		}
		out := opts.Stderr
		if e.req.Tty {
			out = opts.Stdout
		}
		if out != nil && !errors.Is(err, runtime.ErrExecNotStarted) {
			io.WriteString(out, msg+"\n")
		}
		if code < 0 {
			// docker: an exec the runtime could not start (no such
			// command, user or directory) exits 126.
			code = 126
		}
	}
	e.mu.Lock()
	e.running = false
	e.exitCode = &code
	e.exited = time.Now()
	e.mu.Unlock()
	e.markReady()
	s.emitContainer(c, "exec_die", map[string]string{"execID": e.id, "exitCode": strconv.Itoa(code)})
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	e, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	h, err := intValue(r, "h", 0)
	if err != nil {
		return err
	}
	wd, err := intValue(r, "w", 0)
	if err != nil {
		return err
	}
	select {
	case <-e.ready:
	case <-time.After(10 * time.Second):
		return errors.New("timeout waiting for exec session ready")
	}
	select {
	case e.resize <- runtime.TermSize{Height: uint16(h), Width: uint16(wd)}:
	default:
		// The process is gone or not reading sizes: nothing to resize.
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	e, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	privileged := e.req.Privileged
	resp := container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.containerID,
		OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		CanRemove: e.exitCode != nil, DetachKeys: []byte(e.req.DetachKeys), Pid: e.pid,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: e.req.Tty, Entrypoint: e.req.Cmd[0], Arguments: append([]string{}, e.req.Cmd[1:]...),
			Privileged: &privileged, User: e.req.User,
		},
	}
	return writeJSON(w, http.StatusOK, resp)
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}
