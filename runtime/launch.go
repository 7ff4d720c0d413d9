// Package runtime runs containers: it turns a neutral container
// description into an OCI bundle, starts it under a berth-shim, and keeps
// the container records. Pod infra processes use the same Launcher.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/runtime/shim"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// Launcher starts processes described by OCI specs under berth-shims and
// drives them through the OCI runtime chosen by handler.
type Launcher struct {
	shimBinary string
	socketDir  string
	runtimes   map[string]*ocirt.Runtime
	dflt       string
	maxLine    int
}

// LauncherOptions configure a Launcher.
type LauncherOptions struct {
	ShimBinary string
	// SocketDir holds the shims' control sockets. Unix socket paths are
	// limited to 107 bytes, too few for a path inside a bundle named
	// after a 64-hex id, so sockets live here under a short name.
	SocketDir string
	// Runtimes by handler name; Default names the one for "".
	Runtimes map[string]*ocirt.Runtime
	Default  string
	// MaxLineSize of CRI log lines (0: the shim's default).
	MaxLineSize int
}

// NewLauncher returns a Launcher.
func NewLauncher(o LauncherOptions) (*Launcher, error) {
	if _, ok := o.Runtimes[o.Default]; !ok {
		return nil, fmt.Errorf("default runtime %q is not configured", o.Default)
	}
	if err := os.MkdirAll(o.SocketDir, 0o700); err != nil {
		return nil, err
	}
	return &Launcher{shimBinary: o.ShimBinary, socketDir: o.SocketDir, runtimes: o.Runtimes, dflt: o.Default, maxLine: o.MaxLineSize}, nil
}

// Runtime returns the OCI runtime for a handler ("" is the default).
func (l *Launcher) Runtime(handler string) (*ocirt.Runtime, error) {
	if handler == "" {
		handler = l.dflt
	}
	rt, ok := l.runtimes[handler]
	if !ok {
		return nil, fmt.Errorf("runtime handler %q is not configured: %w", handler, errdefs.ErrInvalidArgument)
	}
	return rt, nil
}

// LaunchRequest describes a process to create.
type LaunchRequest struct {
	ID      string
	Handler string
	// Bundle is the directory for config.json and the shim's files.
	Bundle  string
	Spec    *specs.Spec
	LogPath string
	Stdin   bool
	// StdinOnce closes stdin when the first attacher detaches.
	StdinOnce bool
}

// Launched is a created (not yet started) process.
type Launched struct {
	ShimPid, Pid int
}

// exitFile is where the shim records the exit, in the bundle.
func exitFile(bundle string) string { return filepath.Join(bundle, "exit.json") }

// socketPath is the shim's control socket: 24 hex digits of the id
// (96 random bits) are unique enough and keep the path short.
func (l *Launcher) socketPath(id string) string {
	if len(id) > 24 {
		id = id[:24]
	}
	return filepath.Join(l.socketDir, id+".sock")
}

// Launch writes the bundle and creates the process under a new shim. The
// process waits for Start.
func (l *Launcher) Launch(ctx context.Context, req LaunchRequest) (Launched, error) {
	rt, err := l.Runtime(req.Handler)
	if err != nil {
		return Launched{}, err
	}
	if err := os.MkdirAll(req.Bundle, 0o700); err != nil {
		return Launched{}, err
	}
	spec, err := json.Marshal(req.Spec)
	if err != nil {
		return Launched{}, err
	}
	if err := atomicfile.WriteFile(filepath.Join(req.Bundle, "config.json"), spec, 0o600); err != nil {
		return Launched{}, err
	}
	os.Remove(exitFile(req.Bundle))
	started, err := shim.Start(ctx, l.shimBinary, shimapi.Config{
		ID:            req.ID,
		Bundle:        req.Bundle,
		Runtime:       rt.Binary,
		RuntimeRoot:   rt.Root,
		SystemdCgroup: rt.SystemdCgroup,
		LogPath:       req.LogPath,
		ExitFile:      exitFile(req.Bundle),
		Socket:        l.socketPath(req.ID),
		PidFile:       filepath.Join(req.Bundle, "init.pid"),
		Terminal:      req.Spec.Process != nil && req.Spec.Process.Terminal,
		Stdin:         req.Stdin,
		StdinOnce:     req.StdinOnce,
		MaxLineSize:   l.maxLine,
	})
	if err != nil {
		return Launched{}, err
	}
	return Launched{ShimPid: started.ShimPid, Pid: started.Pid}, nil
}

// Start starts a launched process.
func (l *Launcher) Start(ctx context.Context, handler, id string) error {
	rt, err := l.Runtime(handler)
	if err != nil {
		return err
	}
	return rt.Start(ctx, id)
}

// Kill signals the process (all processes of the container when all).
// A process that is gone is not an error.
func (l *Launcher) Kill(ctx context.Context, handler, id string, sig syscall.Signal, all bool) error {
	rt, err := l.Runtime(handler)
	if err != nil {
		return err
	}
	err = rt.Kill(ctx, id, sig, all)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// Delete removes the runtime's state of the process (forcibly).
func (l *Launcher) Delete(ctx context.Context, handler, id string) error {
	rt, err := l.Runtime(handler)
	if err != nil {
		return err
	}
	return rt.Delete(ctx, id, true)
}

// State asks the runtime about the process.
func (l *Launcher) State(ctx context.Context, handler, id string) (ocirt.State, error) {
	rt, err := l.Runtime(handler)
	if err != nil {
		return ocirt.State{}, err
	}
	return rt.State(ctx, id)
}

// Wait blocks until the process exits and returns its status. It asks the
// shim; if the shim is gone, it reads the exit file the shim leaves; if
// there is none (the shim was killed), it kills what is left of the
// container and reports it as killed, so that nothing hangs.
func (l *Launcher) Wait(ctx context.Context, handler, id, bundle string) (shimapi.ExitStatus, error) {
	st, err := shim.Wait(ctx, l.socketPath(id))
	if err == nil {
		return st, nil
	}
	if ctx.Err() != nil {
		return shimapi.ExitStatus{}, ctx.Err()
	}
	return l.exitWithoutShim(ctx, handler, id, bundle)
}

// ExitStatus returns the recorded exit of a process whose shim is gone,
// without waiting; ok is false while it still runs under a live shim.
func (l *Launcher) ExitStatus(ctx context.Context, handler, id, bundle string) (st shimapi.ExitStatus, ok bool, err error) {
	if shim.Alive(l.socketPath(id)) {
		return shimapi.ExitStatus{}, false, nil
	}
	st, err = l.exitWithoutShim(ctx, handler, id, bundle)
	return st, err == nil, err
}

func (l *Launcher) exitWithoutShim(ctx context.Context, handler, id, bundle string) (shimapi.ExitStatus, error) {
	// The shim writes the exit file before it exits; give a shim that is
	// exiting right now a moment.
	for i := 0; i < 20; i++ {
		if st, ok, err := shimapi.ReadExit(exitFile(bundle)); ok || err != nil {
			return st, err
		}
		if i == 0 && !shim.Alive(l.socketPath(id)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The monitor died without recording an exit: nothing writes the
	// container's logs or reaps it any more. Stop it rather than report a
	// process nobody watches.
	l.Kill(ctx, handler, id, syscall.SIGKILL, true)
	st := shimapi.ExitStatus{ExitCode: 128 + int(syscall.SIGKILL), Signal: int(syscall.SIGKILL), ExitedAt: time.Now().UTC()}
	b, _ := json.Marshal(st)
	if err := atomicfile.WriteFile(exitFile(bundle), b, 0o600); err != nil {
		return st, err
	}
	return st, nil
}
