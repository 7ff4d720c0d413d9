package runtime

import (
	"context"
	"errors"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// changes wakes the callers of WaitFor: each container id with waiters
// has a channel that is closed (and replaced) whenever its record
// changes or goes.
type changes struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// next is the channel closed at id's next change.
func (c *changes) next(id string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = map[string]chan struct{}{}
	}
	ch, ok := c.ch[id]
	if !ok {
		ch = make(chan struct{})
		c.ch[id] = ch
	}
	return ch
}

func (m *Manager) changed(id string) {
	m.changes.mu.Lock()
	defer m.changes.mu.Unlock()
	if ch, ok := m.changes.ch[id]; ok {
		close(ch)
		delete(m.changes.ch, id)
	}
}

// WaitFor blocks until until(record, gone) holds for the container id
// (gone: it was removed; the record is then its last state), checked now
// and after each change of its record, or ctx ends. It returns that
// record. An id that names no container wraps errdefs.ErrNotFound.
func (m *Manager) WaitFor(ctx context.Context, id string, until func(c store.Container, gone bool) bool) (store.Container, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return c, err
	}
	for {
		ch := m.changes.next(c.ID)
		cur, err := m.Get(ctx, c.ID)
		gone := errors.Is(err, errdefs.ErrNotFound)
		if err != nil && !gone {
			return c, err
		}
		if !gone {
			c = cur
		}
		if until(c, gone) {
			return c, nil
		}
		if gone {
			return c, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}
