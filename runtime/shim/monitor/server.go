package monitor

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/berth-runtime/berth/runtime/shim/internal/wire"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// maxRequest bounds a request line.
const maxRequest = 512

// serve answers control requests until the listener is closed.
func (m *monitor) serve() {
	for {
		c, err := m.ln.accept()
		if err != nil {
			return
		}
		m.handlers.Add(1)
		go func() {
			defer m.handlers.Done()
			defer c.Close()
			m.handle(c)
		}()
	}
}

func reply(c *os.File, r shimapi.Response) error {
	b := make([]byte, 0, 128+len(r.Error))
	b = appendResponse(b, r)
	_, err := c.Write(append(b, '\n'))
	return err
}

// appendResponse writes r as json.Marshal would.
func appendResponse(b []byte, r shimapi.Response) []byte {
	b = append(b, '{')
	if r.Error != "" {
		b = append(b, `"error":`...)
		b = wire.AppendString(b, r.Error)
	}
	if r.Exit != nil {
		if r.Error != "" {
			b = append(b, ',')
		}
		b = append(b, `"exit":`...)
		b = shimapi.AppendExitStatus(b, *r.Exit)
	}
	return append(b, '}')
}

// readRequest reads the request line. It reads byte by byte so that
// nothing after the line (attach frames) is consumed.
func readRequest(c *os.File) ([]byte, error) {
	line := make([]byte, 0, 128)
	var b [1]byte
	for len(line) < maxRequest {
		n, err := c.Read(b[:])
		if n == 1 {
			line = append(line, b[0])
			if b[0] == '\n' {
				return line, nil
			}
			continue
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return nil, errors.New("request too long")
}

// parseRequest decodes a request as json.Unmarshal would.
func parseRequest(b []byte) (shimapi.Request, error) {
	var r shimapi.Request
	err := wire.ParseObject(b, func(k string, v wire.Value) error {
		var fl *bool
		var u *uint16
		switch {
		case wire.KeyIs(k, "op"):
			s, ok, err := v.Str()
			if ok {
				r.Op = s
			}
			return err
		case wire.KeyIs(k, "width"):
			u = &r.Width
		case wire.KeyIs(k, "height"):
			u = &r.Height
		case wire.KeyIs(k, "stdin"):
			fl = &r.Stdin
		case wire.KeyIs(k, "stdout"):
			fl = &r.Stdout
		case wire.KeyIs(k, "stderr"):
			fl = &r.Stderr
		default:
			return nil
		}
		if u != nil {
			n, ok, err := v.Uint(16)
			if ok {
				*u = uint16(n)
			}
			return err
		}
		x, ok, err := v.Bool()
		if ok {
			*fl = x
		}
		return err
	})
	return r, err
}

func (m *monitor) handle(c *os.File) {
	line, err := readRequest(c)
	if err != nil {
		return
	}
	req, err := parseRequest(line)
	if err != nil {
		reply(c, shimapi.Response{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case shimapi.OpWait:
		m.wait(c)
	case shimapi.OpReopenLog:
		if err := m.log.Reopen(); err != nil {
			reply(c, shimapi.Response{Error: "reopening log: " + err.Error()})
			return
		}
		reply(c, shimapi.Response{})
	case shimapi.OpResize:
		reply(c, errResponse(m.resize(req.Width, req.Height)))
	case shimapi.OpAttach:
		m.attach(c, req)
	default:
		reply(c, shimapi.Response{Error: "unknown op " + req.Op})
	}
}

// wait answers with the exit status once there is one. Until then the
// connection is only watched for the client going away, by this goroutine
// alone; run answers it (answerWaiters).
func (m *monitor) wait(c *os.File) {
	m.waitMu.Lock()
	select {
	case <-m.exited:
		m.waitMu.Unlock()
		st := m.status
		reply(c, shimapi.Response{Exit: &st})
		return
	default:
	}
	m.waiters[c] = struct{}{}
	m.waitMu.Unlock()
	var b [64]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			break // client gone, or answered and closed by answerWaiters
		}
	}
	m.waitMu.Lock()
	delete(m.waiters, c)
	m.waitMu.Unlock()
}

// answerWaiters sends st to every pending wait and ends their connections.
func (m *monitor) answerWaiters(st shimapi.ExitStatus) {
	b := appendResponse(nil, shimapi.Response{Exit: &st})
	b = append(b, '\n')
	m.waitMu.Lock()
	defer m.waitMu.Unlock()
	for c := range m.waiters {
		c.Write(b)
		// Wake the reader in wait; it closes the connection.
		if rc, err := c.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RD) })
		}
		delete(m.waiters, c)
	}
}

func errResponse(err error) shimapi.Response {
	if err != nil {
		return shimapi.Response{Error: err.Error()}
	}
	return shimapi.Response{}
}

type winsize struct{ row, col, xpixel, ypixel uint16 }

func (m *monitor) resize(w, h uint16) error {
	if m.master == nil {
		return errors.New("resize: container has no terminal")
	}
	rc, err := m.master.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ws := winsize{row: h, col: w}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws))); e != 0 {
			ioErr = e
		}
	})
	if err == nil {
		err = ioErr
	}
	if err != nil {
		return errors.New("resize: " + err.Error())
	}
	return nil
}

// attach streams output to the client and its stdin frames to the
// container until either side is done.
func (m *monitor) attach(c *os.File, req shimapi.Request) {
	select {
	case <-m.exited:
		st := m.status
		reply(c, shimapi.Response{Exit: &st})
		return
	default:
	}
	if req.Stdin && m.stdin == nil {
		reply(c, shimapi.Response{Error: "attach: container has no stdin"})
		return
	}
	if err := reply(c, shimapi.Response{}); err != nil {
		return
	}
	a := &attacher{ch: make(chan []byte, 64), stdout: req.Stdout, stderr: req.Stderr || (req.Stdout && m.master != nil)}
	m.att.add(a)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for f := range a.ch {
			if _, err := c.Write(f); err != nil {
				m.att.remove(a)
				c.Close()
				for range a.ch {
				}
				return
			}
		}
		c.Close() // the exit frame went out (or we were dropped): end the reader too
	}()
	// Read stdin frames (or just wait for the client to go away).
	buf := make([]byte, 4096)
	for {
		stream, p, err := shimapi.ReadFrame(c, buf)
		if err != nil {
			break
		}
		if stream != shimapi.StreamStdin || !req.Stdin {
			continue
		}
		if len(p) == 0 {
			if m.cfg.StdinOnce {
				m.closeStdin()
			}
			req.Stdin = false
			continue
		}
		m.stdinMu.Lock()
		if m.stdin != nil {
			m.stdin.Write(p)
		}
		m.stdinMu.Unlock()
	}
	if req.Stdin && m.cfg.StdinOnce {
		m.closeStdin()
	}
	m.att.remove(a)
	<-writerDone
}

func (m *monitor) closeStdin() {
	m.stdinMu.Lock()
	defer m.stdinMu.Unlock()
	if m.stdin != nil && m.stdin != m.master {
		m.stdin.Close()
		m.stdin = nil
	}
}

// attacher is one attached client; frames for it queue in ch.
type attacher struct {
	ch             chan []byte
	stdout, stderr bool
	closed         bool
}

// attachers fans output out without ever blocking the copy loops: an
// attacher whose queue is full is dropped.
type attachers struct {
	mu   sync.Mutex
	list []*attacher
	done bool
}

func (s *attachers) add(a *attacher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		a.closed = true
		close(a.ch)
		return
	}
	s.list = append(s.list, a)
}

func (s *attachers) removeLocked(a *attacher) {
	for i, x := range s.list {
		if x == a {
			s.list = append(s.list[:i], s.list[i+1:]...)
			break
		}
	}
	if !a.closed {
		a.closed = true
		close(a.ch)
	}
}

func (s *attachers) remove(a *attacher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(a)
}

func (s *attachers) broadcast(stream byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.list) == 0 {
		return
	}
	var frame []byte
	for _, a := range append([]*attacher(nil), s.list...) {
		if (stream == shimapi.StreamStdout && !a.stdout) || (stream == shimapi.StreamStderr && !a.stderr) {
			continue
		}
		if frame == nil {
			frame = makeFrame(stream, p)
		}
		select {
		case a.ch <- frame:
		default:
			s.removeLocked(a) // too slow: never block the container
		}
	}
}

// closeAll sends the exit frame to every attacher and ends them.
func (s *attachers) closeAll(st shimapi.ExitStatus) {
	frame := makeFrame(shimapi.StreamExit, shimapi.AppendExitStatus(nil, st))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	for _, a := range s.list {
		select {
		case a.ch <- frame:
		default:
		}
		a.closed = true
		close(a.ch)
	}
	s.list = nil
}

func makeFrame(stream byte, p []byte) []byte {
	return shimapi.AppendFrame(make([]byte, 0, 5+len(p)), stream, p)
}
