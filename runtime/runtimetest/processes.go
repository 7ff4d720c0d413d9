// Package runtimetest has fakes of the runtime Manager's boundaries, for
// unit tests of its life cycle without root, shims or an OCI runtime:
// Processes stands in for the Launcher (shims driving runc or crun), and
// Mounter for the host's mounts. Every method can be made to fail, and
// the fakes record what they were asked to do.
package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// Op names a method of a fake, to make it fail (Fail) or to read its
// calls (Calls).
type Op string

// Ops of Processes.
const (
	OpLaunch     Op = "Launch"
	OpStart      Op = "Start"
	OpKill       Op = "Kill"
	OpDelete     Op = "Delete"
	OpState      Op = "State"
	OpWait       Op = "Wait"
	OpExitStatus Op = "ExitStatus"
)

// Call is one call of a Processes method. Signal and All are set for Kill
// only.
type Call struct {
	Op     Op
	ID     string
	Signal syscall.Signal
	All    bool
}

// Processes is a fake runtime.Processes. A launched process is created,
// Start makes it run, a signal (other than one it ignores) ends it with
// 128+signal, and Exit ends it as if its command had returned. Like the
// real Launcher, killing a process that is gone succeeds, and waiting for
// one the fake does not know reports it killed (the real one finds no
// shim and no exit file). It is safe for concurrent use.
type Processes struct {
	mu      sync.Mutex
	procs   map[string]*process
	errs    map[Op]error
	calls   []Call
	nextPid int
}

type process struct {
	req    runtime.LaunchRequest
	pid    int
	status string // ocirt.StatusCreated, StatusRunning or StatusStopped
	exit   shimapi.ExitStatus
	exited chan struct{}
	ignore map[syscall.Signal]bool
}

var _ runtime.Processes = (*Processes)(nil)

// NewProcesses returns a fake with no processes.
func NewProcesses() *Processes {
	return &Processes{procs: map[string]*process{}, errs: map[Op]error{}, nextPid: 1000}
}

// Fail makes every later call of op return err, until Fail(op, nil).
// Failing calls change nothing but are recorded.
func (p *Processes) Fail(op Op, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.errs, op)
		return
	}
	p.errs[op] = err
}

// Calls returns the calls so far, oldest first; with ops, only those.
func (p *Processes) Calls(ops ...Op) []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Call
	for _, c := range p.calls {
		if len(ops) == 0 || slices.Contains(ops, c.Op) {
			out = append(out, c)
		}
	}
	return out
}

// Request returns what process id was launched with (its spec, log path,
// stdin); ok is false if it was never launched or was deleted.
func (p *Processes) Request(id string) (req runtime.LaunchRequest, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr := p.procs[id]; pr != nil {
		return pr.req, true
	}
	return runtime.LaunchRequest{}, false
}

// IDs lists the processes the fake runtime knows (launched, not deleted).
func (p *Processes) IDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id := range p.procs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Exit ends a created or running process with code, as its command
// returning would. It fails for an unknown or already exited process.
func (p *Processes) Exit(id string, code int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.procs[id]
	if pr == nil || pr.status == ocirt.StatusStopped {
		return fmt.Errorf("process %s is not alive: %w", id, errdefs.ErrFailedPrecondition)
	}
	pr.end(shimapi.ExitStatus{ExitCode: code})
	return nil
}

// Ignore makes process id survive sig, like a program that ignores
// SIGTERM. SIGKILL cannot be ignored.
func (p *Processes) Ignore(id string, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.procs[id]
	if pr == nil {
		return fmt.Errorf("process %s: %w", id, errdefs.ErrNotFound)
	}
	pr.ignore[sig] = true
	return nil
}

// begin records a call and returns the error injected for its op.
func (p *Processes) begin(c Call) error {
	p.calls = append(p.calls, c)
	return p.errs[c.Op]
}

func (pr *process) end(st shimapi.ExitStatus) {
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now().UTC()
	}
	pr.status, pr.exit = ocirt.StatusStopped, st
	close(pr.exited)
}

// killed is what the real Launcher reports for a process whose shim left
// no exit: it kills what is left and calls it killed.
func killed() shimapi.ExitStatus {
	return shimapi.ExitStatus{ExitCode: 128 + int(syscall.SIGKILL), Signal: int(syscall.SIGKILL), ExitedAt: time.Now().UTC()}
}

// Launch creates a process that waits for Start. An id the fake already
// knows fails with errdefs.ErrAlreadyExists, as the runtime does.
func (p *Processes) Launch(ctx context.Context, req runtime.LaunchRequest) (runtime.Launched, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.begin(Call{Op: OpLaunch, ID: req.ID}); err != nil {
		return runtime.Launched{}, err
	}
	if p.procs[req.ID] != nil {
		return runtime.Launched{}, fmt.Errorf("container %s: %w", req.ID, errdefs.ErrAlreadyExists)
	}
	p.nextPid += 2
	pr := &process{req: req, pid: p.nextPid, status: ocirt.StatusCreated, exited: make(chan struct{}), ignore: map[syscall.Signal]bool{}}
	p.procs[req.ID] = pr
	return runtime.Launched{ShimPid: pr.pid - 1, Pid: pr.pid}, nil
}

// Start makes a created process run.
func (p *Processes) Start(ctx context.Context, handler, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.begin(Call{Op: OpStart, ID: id}); err != nil {
		return err
	}
	pr := p.procs[id]
	switch {
	case pr == nil:
		return fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
	case pr.status != ocirt.StatusCreated:
		return fmt.Errorf("container %s is %s, not created: %w", id, pr.status, errdefs.ErrFailedPrecondition)
	}
	pr.status = ocirt.StatusRunning
	return nil
}

// Kill ends the process with 128+sig unless it ignores sig.
func (p *Processes) Kill(ctx context.Context, handler, id string, sig syscall.Signal, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.begin(Call{Op: OpKill, ID: id, Signal: sig, All: all}); err != nil {
		return err
	}
	pr := p.procs[id]
	if pr == nil || pr.status == ocirt.StatusStopped || pr.ignore[sig] && sig != syscall.SIGKILL {
		return nil
	}
	pr.end(shimapi.ExitStatus{ExitCode: 128 + int(sig), Signal: int(sig)})
	return nil
}

// Delete forgets the process, killing it if it is alive.
func (p *Processes) Delete(ctx context.Context, handler, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.begin(Call{Op: OpDelete, ID: id}); err != nil {
		return err
	}
	if pr := p.procs[id]; pr != nil && pr.status != ocirt.StatusStopped {
		pr.end(killed())
	}
	delete(p.procs, id)
	return nil
}

// State reports the process as the runtime would; errdefs.ErrNotFound if
// the fake does not know it.
func (p *Processes) State(ctx context.Context, handler, id string) (ocirt.State, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.begin(Call{Op: OpState, ID: id}); err != nil {
		return ocirt.State{}, err
	}
	pr := p.procs[id]
	if pr == nil {
		return ocirt.State{}, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
	}
	return ocirt.State{ID: id, Pid: pr.pid, Status: pr.status, Bundle: pr.req.Bundle}, nil
}

// Wait blocks until the process ends or ctx does.
func (p *Processes) Wait(ctx context.Context, handler, id, bundle string) (shimapi.ExitStatus, error) {
	p.mu.Lock()
	if err := p.begin(Call{Op: OpWait, ID: id}); err != nil {
		p.mu.Unlock()
		return shimapi.ExitStatus{}, err
	}
	pr := p.procs[id]
	p.mu.Unlock()
	if pr == nil {
		return killed(), nil
	}
	select {
	case <-pr.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return pr.exit, nil
	case <-ctx.Done():
		return shimapi.ExitStatus{}, ctx.Err()
	}
}

// ExitStatus returns the exit of a process that ended; ok is false while
// it is alive.
func (p *Processes) ExitStatus(ctx context.Context, handler, id, bundle string) (shimapi.ExitStatus, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.begin(Call{Op: OpExitStatus, ID: id}); err != nil {
		return shimapi.ExitStatus{}, false, err
	}
	pr := p.procs[id]
	switch {
	case pr == nil:
		return killed(), true, nil
	case pr.status == ocirt.StatusStopped:
		return pr.exit, true, nil
	}
	return shimapi.ExitStatus{}, false, nil
}
