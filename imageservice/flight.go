package imageservice

import (
	"context"
	"sync"
)

// flights runs one piece of work per key at a time and hands its result to
// every caller that asked for the key meanwhile (two pulls of one image
// share one download). The work runs in its own context, cancelled only
// when every caller waiting for it has gone, so one impatient caller does
// not fail the others. The last caller to leave also takes the flight off
// the map, so a later caller starts afresh instead of joining cancelled
// work, and waits for the work to end, so that what it leaves behind (a
// half-unpacked layer) is cleaned up before the caller returns.
type flights[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

type flight[T any] struct {
	done    chan struct{}
	val     T
	err     error
	waiters int
	cancel  context.CancelFunc
	subsMu  sync.Mutex
	// subs receive the progress of the shared work.
	subs []func(Progress)
}

// do runs fn for key unless it is already running, then waits for the
// result or for ctx to end. report, if not nil, receives progress of the
// shared work.
func (f *flights[T]) do(ctx context.Context, key string, report func(Progress), fn func(ctx context.Context, report func(Progress)) (T, error)) (T, error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flight[T]{}
	}
	fl, running := f.m[key]
	if !running {
		workCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		fl = &flight[T]{done: make(chan struct{}), cancel: cancel}
		f.m[key] = fl
		go func() {
			fl.val, fl.err = fn(workCtx, fl.report)
			cancel()
			f.mu.Lock()
			if f.m[key] == fl {
				delete(f.m, key)
			}
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	fl.waiters++
	f.mu.Unlock()
	if report != nil {
		fl.subsMu.Lock()
		fl.subs = append(fl.subs, report)
		fl.subsMu.Unlock()
	}

	select {
	case <-fl.done:
		return fl.val, fl.err
	case <-ctx.Done():
		f.mu.Lock()
		fl.waiters--
		last := fl.waiters == 0
		if last {
			fl.cancel()
			if f.m[key] == fl {
				delete(f.m, key)
			}
		}
		f.mu.Unlock()
		if last {
			<-fl.done
		}
		var zero T
		return zero, ctx.Err()
	}
}

func (fl *flight[T]) report(p Progress) {
	fl.subsMu.Lock()
	subs := fl.subs
	fl.subsMu.Unlock()
	for _, s := range subs {
		s(p)
	}
}
