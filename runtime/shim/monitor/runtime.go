package monitor

import (
	"bytes"
	"errors"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-runtime/berth/runtime/shim/internal/wire"
)

// This file runs `runtime create` the way runtime/ocirt/cli does (same
// global flags, same error text), with syscall.ForkExec instead of os/exec
// and without encoding/json, to keep both out of the shim's binary.

// runtimeCall is `<binary> --log L --log-format json [--root R]
// [--systemd-cgroup] args...`.
type runtimeCall struct {
	binary  string
	argv    []string
	op      string // "runc create", for error messages
	logPath string
}

func newRuntimeCall(binary, root string, systemdCgroup bool, args ...string) (*runtimeCall, error) {
	lf, err := os.CreateTemp("", "berth-oci-log-*.json")
	if err != nil {
		return nil, err
	}
	lf.Close()
	argv := []string{binary, "--log", lf.Name(), "--log-format", "json"}
	if root != "" {
		argv = append(argv, "--root", root)
	}
	if systemdCgroup {
		argv = append(argv, "--systemd-cgroup")
	}
	argv = append(argv, args...)
	op := ""
	if len(args) > 0 {
		op = args[0]
	}
	return &runtimeCall{binary: binary, argv: argv, op: path.Base(binary) + " " + op, logPath: lf.Name()}, nil
}

// run runs the call with the given stdio (nil: /dev/null, except a nil
// stderr, which is captured for the error message) and waits for it.
func (c *runtimeCall) run(stdin, stdout, stderr *os.File) error {
	defer os.Remove(c.logPath)
	path, err := lookPath(c.binary)
	if err != nil {
		return err
	}
	var closeAfter []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	devNull := func(flag int) (*os.File, error) {
		f, err := os.OpenFile(os.DevNull, flag, 0)
		if err == nil {
			closeAfter = append(closeAfter, f)
		}
		return f, err
	}
	if stdin == nil {
		if stdin, err = devNull(os.O_RDONLY); err != nil {
			return err
		}
	}
	if stdout == nil {
		if stdout, err = devNull(os.O_WRONLY); err != nil {
			return err
		}
	}
	var errR *os.File
	if stderr == nil {
		var w *os.File
		if errR, w, err = os.Pipe(); err != nil {
			return err
		}
		defer errR.Close()
		closeAfter = append(closeAfter, w)
		stderr = w
	}
	pid, err := syscall.ForkExec(path, c.argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{stdin.Fd(), stdout.Fd(), stderr.Fd()},
	})
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	var captured []byte
	if errR != nil {
		stderr.Close() // our copy of the write end: EOF when the runtime is done
		buf := make([]byte, 512)
		for {
			n, err := errR.Read(buf)
			captured = append(captured, buf[:n]...)
			if err != nil {
				break
			}
		}
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	msg := lastError(c.logPath)
	if err != nil {
		return errors.New(c.op + ": wait: " + err.Error())
	}
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	text := msg
	if text == "" {
		text = strings.TrimSpace(string(captured))
	}
	if text == "" {
		text = waitStatusString(ws)
	}
	return errors.New(c.op + ": " + text)
}

// waitStatusString is os.ProcessState.String's text, as in exec.ExitError.
func waitStatusString(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		s := "signal: " + ws.Signal().String()
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return "exit status -1"
}

// lastError returns the msg of the last error-level (or fatal) entry in a
// runtime's JSON log (see cli.LastError), or "".
func lastError(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	var last string
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) > 1<<20 {
			break // bufio.Scanner's limit in cli.LastError
		}
		var level, msg string
		err := wire.ParseObject(line, func(k string, v wire.Value) error {
			var dst *string
			switch {
			case wire.KeyIs(k, "level"):
				dst = &level
			case wire.KeyIs(k, "msg"):
				dst = &msg
			default:
				return nil
			}
			s, ok, err := v.Str()
			if ok {
				*dst = s
			}
			return err
		})
		if err != nil {
			continue
		}
		if level == "error" || level == "fatal" || level == "panic" {
			last = msg
		}
	}
	return last
}

// lookPath finds a binary named without a slash in $PATH, as exec.Command.
func lookPath(file string) (string, error) {
	if strings.IndexByte(file, '/') >= 0 {
		return file, nil
	}
	for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("exec: \"" + file + "\": executable file not found in $PATH")
}
