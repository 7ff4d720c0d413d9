package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/runtime/oci"
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
// capabilities) with o's command, terminal, environment, user, working
// directory and privileges.
func (m *Manager) execProcess(c store.Container, o ExecOpts) ([]byte, error) {
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
	p.Args = o.Cmd
	p.Terminal = o.TTY
	p.ConsoleSize = nil
	p.Env = mergeEnv(p.Env, o.Env)
	if o.WorkingDir != "" {
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		u, err := m.resolveUser(m.rootfs(c), UserRequest{Username: o.User}, "")
		if err != nil {
			return nil, err
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	if o.Privileged {
		all := oci.AllCapabilities(m.host.CapLastCap)
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return json.Marshal(p)
}

// mergeEnv is env with add's variables (KEY=value, or KEY alone) added,
// each replacing a variable of the same name.
func mergeEnv(env, add []string) []string {
	out := slices.Clone(env)
	for _, kv := range add {
		key, _, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool {
			k, _, _ := strings.Cut(e, "=")
			return k == key
		})
		out = append(out, kv)
	}
	return out
}

// reportPid calls started with the pid runc writes to pidFile once the
// process runs, unless done closes first.
func reportPid(pidFile string, done <-chan struct{}, started func(int)) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				started(pid)
				return
			}
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
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
