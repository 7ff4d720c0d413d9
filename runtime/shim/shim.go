// Package shim is berthd's side of berth-shim: starting a shim for a
// container and talking to its control socket. The shared types and the
// protocol are in shimapi (linked into the shim, so kept lean); they are
// aliased here so that berthd needs only this package.
package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// Config is the shim's input; see shimapi.Config.
type Config = shimapi.Config

// ExitStatus is a container's exit; see shimapi.ExitStatus.
type ExitStatus = shimapi.ExitStatus

// Started describes a running shim.
type Started struct {
	ShimPid int // the detached monitor process
	Pid     int // the container's init process
}

// ConfigPath is where Start writes cfg: <bundle>/shim.json.
func ConfigPath(cfg Config) string { return filepath.Join(cfg.Bundle, "shim.json") }

// LogPath is where the shim's own diagnostics go: <bundle>/shim.log.
func LogPath(cfg Config) string { return filepath.Join(cfg.Bundle, "shim.log") }

// Start writes cfg, starts the shim and waits until the container is
// created: it returns the init pid, or the runtime's create error verbatim.
// The shim detaches itself (new session, re-executed so that it is not
// berthd's child) and outlives berthd. If ctx ends first, the shim is
// killed; the container it may have created is the caller's to delete.
func Start(ctx context.Context, shimBinary string, cfg Config) (Started, error) {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Runtime == "" || cfg.ExitFile == "" || cfg.Socket == "" || cfg.PidFile == "" {
		return Started{}, fmt.Errorf("shim config needs id, bundle, runtime, exit file, socket and pid file: %w", errdefs.ErrInvalidArgument)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return Started{}, err
	}
	if err := atomicfile.WriteFile(ConfigPath(cfg), b, 0o600); err != nil {
		return Started{}, err
	}
	logf, err := os.OpenFile(LogPath(cfg), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return Started{}, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return Started{}, err
	}
	defer r.Close()
	cmd := exec.Command(shimBinary, ConfigPath(cfg))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return Started{}, fmt.Errorf("starting shim for %s: %w", cfg.ID, err)
	}
	// Stage 1 exits as soon as the monitor is forked; reap it.
	go cmd.Wait()

	type result struct {
		s   Started
		err error
	}
	res := make(chan result, 1)
	var shimPid int
	pidCh := make(chan int, 1)
	go func() {
		var s Started
		dec := json.NewDecoder(r)
		for {
			var m shimapi.SyncMsg
			if err := dec.Decode(&m); err != nil {
				res <- result{err: fmt.Errorf("shim for %s exited without reporting (see %s)", cfg.ID, LogPath(cfg))}
				return
			}
			switch {
			case m.ShimPid != 0:
				s.ShimPid = m.ShimPid
				pidCh <- m.ShimPid
			case m.Error != "":
				res <- result{err: errors.New(m.Error)}
				return
			case m.Pid != 0:
				s.Pid = m.Pid
				res <- result{s: s}
				return
			}
		}
	}()
	for {
		select {
		case shimPid = <-pidCh:
		case x := <-res:
			return x.s, x.err
		case <-ctx.Done():
			select {
			case shimPid = <-pidCh:
			default:
			}
			if shimPid > 0 {
				syscall.Kill(shimPid, syscall.SIGKILL)
			}
			return Started{}, fmt.Errorf("starting shim for %s: %w", cfg.ID, ctx.Err())
		}
	}
}

// ReadExit reads the exit file; ok is false if it does not exist yet.
func ReadExit(path string) (ExitStatus, bool, error) { return shimapi.ReadExit(path) }

// call connects, sends req and reads one response.
func call(ctx context.Context, socket string, req shimapi.Request) (net.Conn, *bufio.Reader, shimapi.Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, nil, shimapi.Response{}, fmt.Errorf("connecting to shim %s: %w: %w", socket, errdefs.ErrUnavailable, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		c.Close()
		return nil, nil, shimapi.Response{}, fmt.Errorf("shim %s: %w: %w", socket, errdefs.ErrUnavailable, err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadBytes('\n')
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, nil, shimapi.Response{}, ctx.Err()
		}
		return nil, nil, shimapi.Response{}, fmt.Errorf("shim %s went away: %w: %w", socket, errdefs.ErrUnavailable, err)
	}
	var resp shimapi.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		c.Close()
		return nil, nil, resp, fmt.Errorf("shim %s: bad response: %w", socket, err)
	}
	if resp.Error != "" {
		c.Close()
		return nil, nil, resp, fmt.Errorf("shim %s: %s", socket, resp.Error)
	}
	return c, br, resp, nil
}

// Wait blocks until the container has exited and returns its status. If
// the shim is gone (exited, or killed) it returns an error wrapping
// errdefs.ErrUnavailable: read the exit file, else ask the runtime.
func Wait(ctx context.Context, socket string) (ExitStatus, error) {
	c, _, resp, err := call(ctx, socket, shimapi.Request{Op: shimapi.OpWait})
	if err != nil {
		return ExitStatus{}, err
	}
	c.Close()
	if resp.Exit == nil {
		return ExitStatus{}, fmt.Errorf("shim %s: wait reply without status", socket)
	}
	return *resp.Exit, nil
}

// ReopenLog makes the shim reopen its log file (after the kubelet rotated it).
func ReopenLog(ctx context.Context, socket string) error {
	c, _, _, err := call(ctx, socket, shimapi.Request{Op: shimapi.OpReopenLog})
	if err == nil {
		c.Close()
	}
	return err
}

// Resize sets the terminal size of a tty container.
func Resize(ctx context.Context, socket string, width, height uint16) error {
	c, _, _, err := call(ctx, socket, shimapi.Request{Op: shimapi.OpResize, Width: width, Height: height})
	if err == nil {
		c.Close()
	}
	return err
}

// AttachOpts selects the streams of Attach; nil means not attached.
type AttachOpts struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Attached, if set, is called once the shim accepted the attach,
	// before any output is written: output from then on reaches the
	// streams.
	Attached func()
}

// Attach streams the container's output to o.Stdout/o.Stderr and o.Stdin to
// it until the container exits (returning its status) or ctx ends. When
// o.Stdin reaches EOF the shim is told so (with StdinOnce it then closes the
// container's stdin).
func Attach(ctx context.Context, socket string, o AttachOpts) (ExitStatus, error) {
	req := shimapi.Request{Op: shimapi.OpAttach, Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil}
	c, br, resp, err := call(ctx, socket, req)
	if err != nil {
		return ExitStatus{}, err
	}
	if resp.Exit != nil { // already exited
		c.Close()
		return *resp.Exit, nil
	}
	if o.Attached != nil {
		o.Attached()
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := o.Stdin.Read(buf)
				if n > 0 {
					if shimapi.WriteFrame(c, shimapi.StreamStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					shimapi.WriteFrame(c, shimapi.StreamStdin, nil)
					return
				}
			}
		}()
	}
	buf := make([]byte, 32<<10)
	for {
		stream, p, err := shimapi.ReadFrame(br, buf)
		if err != nil {
			if ctx.Err() != nil {
				return ExitStatus{}, ctx.Err()
			}
			return ExitStatus{}, fmt.Errorf("attach to %s: %w: %w", socket, errdefs.ErrUnavailable, err)
		}
		switch stream {
		case shimapi.StreamStdout:
			if o.Stdout != nil {
				o.Stdout.Write(p)
			}
		case shimapi.StreamStderr:
			if o.Stderr != nil {
				o.Stderr.Write(p)
			}
		case shimapi.StreamExit:
			var st ExitStatus
			if err := json.Unmarshal(p, &st); err != nil {
				return st, fmt.Errorf("attach to %s: bad exit frame: %w", socket, err)
			}
			return st, nil
		}
	}
}

// Alive reports whether a shim is serving socket (a connection is accepted).
// A shim that exited, or was killed, has no listener.
func Alive(socket string) bool {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
