package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// serve answers control requests until the listener is closed.
func (m *monitor) serve() {
	for {
		c, err := m.ln.AcceptUnix()
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

func reply(c net.Conn, r shimapi.Response) error {
	b, _ := json.Marshal(r)
	_, err := c.Write(append(b, '\n'))
	return err
}

func (m *monitor) handle(c *net.UnixConn) {
	br := bufio.NewReaderSize(c, 512)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	var req shimapi.Request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(c, shimapi.Response{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case shimapi.OpWait:
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, br); close(gone) }()
		select {
		case <-m.exited:
			st := m.status
			reply(c, shimapi.Response{Exit: &st})
		case <-gone:
		}
	case shimapi.OpReopenLog:
		if err := m.log.Reopen(); err != nil {
			reply(c, shimapi.Response{Error: "reopening log: " + err.Error()})
			return
		}
		reply(c, shimapi.Response{})
	case shimapi.OpResize:
		reply(c, errResponse(m.resize(req.Width, req.Height)))
	case shimapi.OpAttach:
		m.attach(c, br, req)
	default:
		reply(c, shimapi.Response{Error: "unknown op " + req.Op})
	}
}

func errResponse(err error) shimapi.Response {
	if err != nil {
		return shimapi.Response{Error: err.Error()}
	}
	return shimapi.Response{}
}

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
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
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
func (m *monitor) attach(c *net.UnixConn, br *bufio.Reader, req shimapi.Request) {
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
		stream, p, err := shimapi.ReadFrame(br, buf)
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
	b, _ := json.Marshal(st)
	frame := makeFrame(shimapi.StreamExit, b)
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
	var b sliceWriter
	shimapi.WriteFrame(&b, stream, p)
	return b
}

type sliceWriter []byte

func (w *sliceWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
