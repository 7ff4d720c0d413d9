package monitor

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// The shim's unix sockets are raw descriptors wrapped in *os.File, which
// puts them on the runtime's poller: the same blocking-goroutine model as
// package net, without linking it (net is large, and the shim's binary is
// resident in every container's monitor).

// listener is a listening unix socket that removes its path when closed.
type listener struct {
	f    *os.File
	path string
	once sync.Once
}

func listenUnix(path string) (*listener, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	// The kernel caps the backlog at net.core.somaxconn.
	if err := syscall.Listen(fd, 0xffff); err != nil {
		syscall.Close(fd)
		os.Remove(path)
		return nil, os.NewSyscallError("listen", err)
	}
	return &listener{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// accept waits for a connection; it fails once the listener is closed.
func (l *listener) accept() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			nfd, _, aerr = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch aerr {
			case syscall.EINTR, syscall.ECONNABORTED:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	return os.NewFile(uintptr(nfd), "conn"), nil
}

// Close closes the socket and removes its path (once).
func (l *listener) Close() {
	l.once.Do(func() {
		os.Remove(l.path)
		l.f.Close()
	})
}

// recvFd reads one message from c and returns the first fd passed in it
// (SCM_RIGHTS); any other fds are closed.
func recvFd(c *os.File) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	oob := make([]byte, syscall.CmsgSpace(4*4))
	buf := make([]byte, 256)
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			_, oobn, _, _, rerr = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_CMSG_CLOEXEC)
			switch rerr {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return -1, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return -1, errors.New("no control message")
	}
	var fds []int
	for i := range msgs {
		if f, err := syscall.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	if len(fds) == 0 {
		return -1, errors.New("no fd in control message")
	}
	for _, fd := range fds[1:] {
		syscall.Close(fd)
	}
	return fds[0], nil
}
