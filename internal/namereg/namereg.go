// Package namereg reserves the unique names of pods and containers.
//
// The kubelet gives up on RunPodSandbox and CreateContainer after two
// minutes and sends the same request again. A create is therefore run
// detached from its caller: a retry that arrives while it runs waits for
// it, and a retry that arrives after it finished for a caller that had gone
// gets the finished object. Only a name held by an object that some caller
// did receive is refused with errdefs.ErrAlreadyExists (CRI-O calls this its
// resource store).
package namereg

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// CreateTimeout bounds a create that runs on after its caller left.
const CreateTimeout = 4 * time.Minute

// Registry maps names to ids.
type Registry struct {
	mu        sync.Mutex
	names     map[string]string
	running   map[string]*op
	unclaimed map[string]bool
}

type op struct {
	done chan struct{}
	id   string
	err  error
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{names: map[string]string{}, running: map[string]*op{}, unclaimed: map[string]bool{}}
}

// Create reserves key and runs create, or hands over the result of the
// create already running or finished-but-unclaimed for key. create returns
// the new object's id; on error the name is released.
func (r *Registry) Create(ctx context.Context, key string, create func(ctx context.Context) (string, error)) (string, error) {
	r.mu.Lock()
	if o, ok := r.running[key]; ok {
		r.mu.Unlock()
		return r.wait(ctx, key, o)
	}
	if id, ok := r.names[key]; ok {
		if r.unclaimed[key] {
			delete(r.unclaimed, key)
			r.mu.Unlock()
			return id, nil
		}
		r.mu.Unlock()
		return "", fmt.Errorf("name %q is in use by %s: %w", key, id, errdefs.ErrAlreadyExists)
	}
	o := &op{done: make(chan struct{})}
	r.running[key] = o
	r.names[key] = ""
	r.mu.Unlock()

	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CreateTimeout)
		defer cancel()
		o.id, o.err = create(cctx)
		r.mu.Lock()
		delete(r.running, key)
		if o.err != nil {
			delete(r.names, key)
		} else {
			r.names[key] = o.id
			// Claimed by whoever is still waiting; if nobody is,
			// the next request for the key takes it.
			r.unclaimed[key] = true
		}
		r.mu.Unlock()
		close(o.done)
	}()
	return r.wait(ctx, key, o)
}

func (r *Registry) wait(ctx context.Context, key string, o *op) (string, error) {
	select {
	case <-o.done:
		if o.err != nil {
			return "", o.err
		}
		r.mu.Lock()
		delete(r.unclaimed, key)
		r.mu.Unlock()
		return o.id, nil
	case <-ctx.Done():
		return "", fmt.Errorf("creating %q is still in progress; ask again to get it: %w", key, ctx.Err())
	}
}

// Reserve records that key belongs to id (for objects found at start-up).
func (r *Registry) Reserve(key, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if holder, ok := r.names[key]; ok && holder != id {
		return fmt.Errorf("name %q is in use by %s: %w", key, holder, errdefs.ErrAlreadyExists)
	}
	r.names[key] = id
	return nil
}

// Release frees key if id holds it.
func (r *Registry) Release(key, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[key] == id {
		delete(r.names, key)
		delete(r.unclaimed, key)
	}
}
