// Package ocirt drives an OCI runtime (runc or crun) through its command
// line. berth never re-implements what the runtime does (namespaces,
// pivot_root, seccomp); this package only builds the invocations and turns
// their failures into errors that carry the runtime's own message and, where
// the condition is known, an errdefs sentinel.
package ocirt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/ocirt/cli"
)

// Container statuses reported by State (the OCI runtime spec's values).
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// State is the part of the runtime's `state` output berth uses
// (https://github.com/opencontainers/runtime-spec/blob/main/runtime.md#state).
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// Runtime is an OCI runtime binary with berth's global flags.
type Runtime struct {
	Binary        string // e.g. /usr/sbin/runc
	Root          string // --root, private per berthd, e.g. <state>/runc
	SystemdCgroup bool
}

// CLI is the runtime's command line with berth's global flags, for the
// calls the driver does not wrap (runc exec with a terminal of berthd's).
func (r *Runtime) CLI() cli.Runtime {
	return cli.Runtime{Binary: r.Binary, Root: r.Root, SystemdCgroup: r.SystemdCgroup}
}

func (r *Runtime) run(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) error {
	c, err := r.CLI().Command(ctx, args...)
	if err != nil {
		return err
	}
	c.Cmd.Stdin = stdin
	c.Cmd.Stdout = stdout
	return classify(c.Run())
}

// Start runs `start`: the created container's process runs.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.run(ctx, nil, nil, "start", id)
}

// Kill sends sig to the init process (all: to every process of the container).
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	return r.run(ctx, nil, nil, append(args, id, strconv.Itoa(int(sig)))...)
}

// Pause freezes every process of the container (`pause`, the cgroup
// freezer).
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.run(ctx, nil, nil, "pause", id)
}

// Resume thaws a paused container (`resume`).
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.run(ctx, nil, nil, "resume", id)
}

// Delete removes the container. A container that does not exist is not an error.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	err := r.run(ctx, nil, nil, append(args, id)...)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// State returns the runtime's view of the container; errdefs.ErrNotFound if
// it does not know it.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	var out bytes.Buffer
	if err := r.run(ctx, nil, &out, "state", id); err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		return State{}, fmt.Errorf("parsing state of %s: %w", id, err)
	}
	return s, nil
}

// Update applies a new resources section (the JSON of the OCI
// LinuxResources) with `update -r -`.
func (r *Runtime) Update(ctx context.Context, id string, resourcesJSON []byte) error {
	return r.run(ctx, bytes.NewReader(resourcesJSON), nil, "update", "-r", "-", id)
}

// classify adds a sentinel to runtime errors whose text names a known
// condition, keeping the runtime's message as the error text. The patterns
// are runc's and crun's wording, kept narrow so that a create failure such as
// `exec: "x": executable file not found in $PATH` stays unclassified.
func classify(err error) error {
	var ce *cli.Error
	if !errors.As(err, &ce) {
		return err
	}
	t := strings.ToLower(ce.Text())
	switch {
	case strings.Contains(t, "container does not exist"),
		strings.Contains(t, "no such file or directory") && (strings.Contains(t, "/status") || strings.Contains(t, "state.json")):
		return &sentinelError{err, errdefs.ErrNotFound}
	case strings.Contains(t, "container with id exists"), strings.Contains(t, "already exists"):
		return &sentinelError{err, errdefs.ErrAlreadyExists}
	case strings.Contains(t, "container not running"), strings.Contains(t, "process already finished"),
		strings.Contains(t, "is not stopped"), strings.Contains(t, "container is not running"):
		return &sentinelError{err, errdefs.ErrFailedPrecondition}
	}
	return err
}

// sentinelError reads as the runtime's error and matches a sentinel too.
type sentinelError struct{ err, sentinel error }

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.err, e.sentinel} }
