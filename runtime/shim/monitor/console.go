package monitor

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// consoleSocket receives the pty master that the runtime sends over
// --console-socket (SCM_RIGHTS) when process.terminal is set.
type consoleSocket struct {
	dir, path string
	ln        *listener
	result    chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

func listenConsole() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return nil, err
	}
	p := dir + "/c.sock"
	ln, err := listenUnix(p)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &consoleSocket{dir: dir, path: p, ln: ln, result: make(chan consoleResult, 1)}
	go func() { c.result <- c.accept() }()
	return c, nil
}

func (c *consoleSocket) accept() consoleResult {
	conn, err := c.ln.accept()
	if err != nil {
		return consoleResult{err: err}
	}
	defer conn.Close()
	fd, err := recvFd(conn)
	if err != nil {
		return consoleResult{err: err}
	}
	// Non-blocking so that the file is pollable (read deadlines for the drain).
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return consoleResult{err: err}
	}
	return consoleResult{f: os.NewFile(uintptr(fd), "pty-master")}
}

func (c *consoleSocket) receive(timeout time.Duration) (*os.File, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.result:
		return r.f, r.err
	case <-t.C:
		return nil, errors.New("timed out")
	}
}

func (c *consoleSocket) Close() {
	c.ln.Close()
	os.RemoveAll(c.dir)
}
