package monitor

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket receives the pty master that the runtime sends over
// --console-socket (SCM_RIGHTS) when process.terminal is set.
type consoleSocket struct {
	dir, path string
	ln        *net.UnixListener
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
	p := filepath.Join(dir, "c.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &consoleSocket{dir: dir, path: p, ln: ln, result: make(chan consoleResult, 1)}
	go func() { c.result <- c.accept() }()
	return c, nil
}

func (c *consoleSocket) accept() consoleResult {
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return consoleResult{err: err}
	}
	defer conn.Close()
	oob := make([]byte, unix.CmsgSpace(4))
	buf := make([]byte, 256)
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return consoleResult{err: err}
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return consoleResult{err: errors.New("no control message")}
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return consoleResult{err: errors.New("no fd in control message")}
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	unix.CloseOnExec(fds[0])
	// Non-blocking so that the file is pollable (read deadlines for the drain).
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return consoleResult{err: err}
	}
	return consoleResult{f: os.NewFile(uintptr(fds[0]), "pty-master")}
}

func (c *consoleSocket) receive(timeout time.Duration) (*os.File, error) {
	select {
	case r := <-c.result:
		return r.f, r.err
	case <-time.After(timeout):
		return nil, errors.New("timed out")
	}
}

func (c *consoleSocket) Close() {
	c.ln.Close()
	os.RemoveAll(c.dir)
}
