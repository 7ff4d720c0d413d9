// Package ocirttest is a fake ocirt.Driver for unit tests of runtime/: an
// in-memory container table with injectable errors.
package ocirttest

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/ocirt"
)

// Op names a Driver method, for Fail and Calls.
type Op string

// Driver operations.
const (
	OpCreate Op = "create"
	OpStart  Op = "start"
	OpKill   Op = "kill"
	OpDelete Op = "delete"
	OpState  Op = "state"
	OpUpdate Op = "update"
)

// Call records one method call.
type Call struct {
	Op Op
	ID string
}

// Fake implements ocirt.Driver in memory. Containers created move to
// "running" on Start and to "stopped" on Kill with SIGKILL or SIGTERM.
type Fake struct {
	// Fail, if set, is asked before every call; a non-nil error is
	// returned as the call's result (inject runtime failures here).
	Fail func(op Op, id string) error

	mu         sync.Mutex
	containers map[string]*ocirt.State
	calls      []Call
	nextPid    int
}

var _ ocirt.Driver = (*Fake)(nil)

// New returns an empty Fake.
func New() *Fake { return &Fake{containers: map[string]*ocirt.State{}, nextPid: 1000} }

// Calls returns the calls made so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

func (f *Fake) enter(op Op, id string) error {
	f.mu.Lock()
	f.calls = append(f.calls, Call{op, id})
	fail := f.Fail
	f.mu.Unlock()
	if fail != nil {
		return fail(op, id)
	}
	return nil
}

func (f *Fake) get(id string) (*ocirt.State, error) {
	c, ok := f.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

// Create implements ocirt.Driver.
func (f *Fake) Create(_ context.Context, id, bundle string, _ ocirt.CreateOpts) error {
	if err := f.enter(OpCreate, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[id]; ok {
		return fmt.Errorf("container with id exists: %s: %w", id, errdefs.ErrAlreadyExists)
	}
	f.nextPid++
	f.containers[id] = &ocirt.State{ID: id, Pid: f.nextPid, Status: ocirt.StatusCreated, Bundle: bundle}
	return nil
}

// Start implements ocirt.Driver.
func (f *Fake) Start(_ context.Context, id string) error {
	if err := f.enter(OpStart, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.Status != ocirt.StatusCreated {
		return fmt.Errorf("cannot start a container that has %s: %w", c.Status, errdefs.ErrFailedPrecondition)
	}
	c.Status = ocirt.StatusRunning
	return nil
}

// Kill implements ocirt.Driver.
func (f *Fake) Kill(_ context.Context, id string, sig syscall.Signal, _ bool) error {
	if err := f.enter(OpKill, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.Status == ocirt.StatusStopped {
		return fmt.Errorf("container not running: %w", errdefs.ErrFailedPrecondition)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		c.Status = ocirt.StatusStopped
	}
	return nil
}

// Delete implements ocirt.Driver.
func (f *Fake) Delete(_ context.Context, id string, force bool) error {
	if err := f.enter(OpDelete, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	if c.Status == ocirt.StatusRunning && !force {
		return fmt.Errorf("cannot delete container %s that is not stopped: %w", id, errdefs.ErrFailedPrecondition)
	}
	delete(f.containers, id)
	return nil
}

// State implements ocirt.Driver.
func (f *Fake) State(_ context.Context, id string) (ocirt.State, error) {
	if err := f.enter(OpState, id); err != nil {
		return ocirt.State{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return ocirt.State{}, err
	}
	return *c, nil
}

// Update implements ocirt.Driver.
func (f *Fake) Update(_ context.Context, id string, _ []byte) error {
	if err := f.enter(OpUpdate, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.get(id)
	return err
}
