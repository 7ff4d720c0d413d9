// Package cli runs an OCI runtime binary (runc, crun) with berth's global
// flags and turns a failure into an error carrying the runtime's own
// message. berthd uses it twice: the driver (runtime/ocirt) wraps its
// subcommands, and exec (runtime/exec_stream.go) runs `exec` through it
// with stdio of its own. It imports no berth package. The shim does not
// use it: runtime/shim/monitor repeats the same flags and error text with
// syscall.ForkExec, to keep os/exec and encoding/json out of its binary.
package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Runtime names the binary and its global flags.
type Runtime struct {
	Binary        string // path of runc or crun
	Root          string // --root: the runtime's state dir, private per berthd
	SystemdCgroup bool   // --systemd-cgroup
}

// Call is one invocation. Create it with Command, adjust Cmd (stdio, extra
// files), then Run or Start+Wait.
type Call struct {
	Cmd     *exec.Cmd
	op      string // the subcommand, for error messages
	logPath string
	stderr  *bytes.Buffer // captured when the caller did not set Stderr
}

// Command prepares `<binary> --root R --log L --log-format json [--systemd-cgroup] args...`.
// The log goes to a fresh temporary file so that the error read back after
// a failure is this call's own.
func (r Runtime) Command(ctx context.Context, args ...string) (*Call, error) {
	lf, err := os.CreateTemp("", "berth-oci-log-*.json")
	if err != nil {
		return nil, err
	}
	lf.Close()
	g := []string{"--log", lf.Name(), "--log-format", "json"}
	if r.Root != "" {
		g = append(g, "--root", r.Root)
	}
	if r.SystemdCgroup {
		g = append(g, "--systemd-cgroup")
	}
	cmd := exec.CommandContext(ctx, r.Binary, append(g, args...)...)
	op := ""
	if len(args) > 0 {
		op = args[0]
	}
	return &Call{Cmd: cmd, op: filepath.Base(r.Binary) + " " + op, logPath: lf.Name()}, nil
}

// Run runs the call to completion and cleans up; see Wait.
func (c *Call) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Start starts the process.
func (c *Call) Start() error {
	if c.Cmd.Stderr == nil {
		c.stderr = &bytes.Buffer{}
		c.Cmd.Stderr = c.stderr
	}
	if err := c.Cmd.Start(); err != nil {
		os.Remove(c.logPath)
		return err
	}
	return nil
}

// Wait waits for the process and removes the log file. A failure becomes an
// *Error whose Msg is the runtime's last logged error, verbatim.
func (c *Call) Wait() error {
	werr := c.Cmd.Wait()
	logMsg := LastError(c.logPath)
	os.Remove(c.logPath)
	if werr == nil {
		return nil
	}
	e := &Error{Op: c.op, Args: c.Cmd.Args, Err: werr, Msg: logMsg}
	if c.stderr != nil {
		e.Stderr = strings.TrimSpace(c.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		e.ExitCode = ee.ExitCode()
	} else {
		e.ExitCode = -1
	}
	return e
}

// Error is a failed runtime invocation.
type Error struct {
	Op       string // "runc create"
	Args     []string
	ExitCode int    // -1 if the process did not exit normally or did not start
	Msg      string // the runtime's last error from its --log, verbatim
	Stderr   string // captured stderr, when not redirected by the caller
	Err      error
}

func (e *Error) Error() string {
	if t := e.Text(); t != "" {
		return e.Op + ": " + t
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Text is the runtime's own message (log, else stderr).
func (e *Error) Text() string {
	if e.Msg != "" {
		return e.Msg
	}
	return e.Stderr
}

// LastError returns the msg of the last error-level (or fatal) entry in a
// runtime's JSON log (`{"level":"error","msg":"…","time":"…"}`, the format of
// runc's and crun's --log-format json), or "" if there is none.
func LastError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.Level == "error" || e.Level == "fatal" || e.Level == "panic" {
			last = e.Msg
		}
	}
	return last
}
