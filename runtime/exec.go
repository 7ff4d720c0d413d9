package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/store"
)

// MaxExecOutput caps each of ExecSync's stdout and stderr, as the kubelet
// caps probe output (16 MiB); the rest is discarded.
const MaxExecOutput = 16 << 20

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ExecSync runs cmd in a running container and returns its output and
// exit code: Exec with capped buffers and no stdin. With a timeout, a
// command still running then is killed and the call fails with an error
// wrapping context.DeadlineExceeded.
func (m *Manager) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	var stdout, stderr capped
	stdout.max, stderr.max = MaxExecOutput, MaxExecOutput
	ectx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ectx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	code, err := m.Exec(ectx, id, ExecOpts{Cmd: cmd, Stdout: &stdout, Stderr: &stderr})
	if err != nil && ctx.Err() == nil && ectx.Err() != nil {
		err = fmt.Errorf("command %q timed out after %s: %w", strings.Join(cmd, " "), timeout, context.DeadlineExceeded)
	}
	return ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}, err
}

// execProcess is the container's own process spec (user, env, cwd,
// capabilities) with cmd as argv, and a terminal if tty.
func (m *Manager) execProcess(c store.Container, cmd []string, tty bool) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, err
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("container %s has no process in its spec", c.ID)
	}
	p := *spec.Process
	p.Args = cmd
	p.Terminal = tty
	p.ConsoleSize = nil
	return json.Marshal(p)
}

// killExec kills the exec'd process, whose pid runc wrote. It may not
// have been written yet if the command never started.
func killExec(pidFile string) {
	for i := 0; i < 50; i++ {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// capped keeps the first max bytes written to it and discards the rest
// without failing the writer (the command must not see EPIPE).
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		if len(p) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}
