// Package events carries life-cycle events of pods and containers from
// the services that cause them to the subscribers (the CRI's
// GetContainerEvents streams, later the Engine API's /events).
//
// Every event gets its sequence number and is queued to every subscriber
// under one lock, so all subscribers see the same total order. A
// subscriber's queue is unbounded up to MaxQueue, so publishing never
// blocks and never drops silently: a subscriber that falls that far behind
// is closed with ErrLagged, and its client must relist (as the kubelet
// does when its event stream breaks).
package events

import (
	"errors"
	"sync"
	"time"
)

// Kind is what happened.
type Kind int

// The kinds the CRI knows. Sandboxes emit them too, with their own id.
const (
	Created Kind = iota
	Started
	Stopped
	Deleted
)

func (k Kind) String() string {
	return [...]string{"created", "started", "stopped", "deleted"}[k]
}

// Event is one life-cycle transition.
type Event struct {
	Seq  uint64
	Kind Kind
	// ID is the container's (or, for a sandbox event, the sandbox's) id.
	ID        string
	SandboxID string
	// Sandbox is true for events of the sandbox itself.
	Sandbox bool
	// Origin is the front door that made the object ("cri", "docker"):
	// each door streams its own.
	Origin string
	Time   time.Time

	// Name, Key, Attempt, Image, Labels and ExitCode describe the
	// container as it was when the event happened, for subscribers that
	// can no longer look it up (after Deleted its record is gone): Name
	// is its metadata name, Key its entry in the name index (docker's
	// container name), ExitCode is set on Stopped.
	Name     string
	Key      string
	Attempt  uint32
	Image    string
	Labels   map[string]string
	ExitCode int32
}

// MaxQueue is how far a subscriber may fall behind before it is cut off.
const MaxQueue = 1 << 16

// ErrLagged ends a subscription that fell MaxQueue events behind.
var ErrLagged = errors.New("event subscriber fell too far behind; relist")

// Bus fans events out to subscribers.
type Bus struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*Subscription]struct{}
	taps map[*tap]struct{}
}

type tap struct{ fn func(Event) }

// NewBus returns a Bus.
func NewBus() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Publish queues e to every subscriber, stamping Seq (and Time if unset).
func (b *Bus) Publish(e Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for s := range b.subs {
		s.push(e)
	}
	for t := range b.taps {
		t.fn(e)
	}
}

// Tap calls fn with every event published from now on, synchronously
// and in the bus's order, before Publish returns: a subscriber that must
// interleave the bus's events with its own in the order they happened
// (the Engine API's /events). fn runs under the bus's lock, so it must be
// quick and must not publish. The returned func ends the tap.
func (b *Bus) Tap(fn func(Event)) (cancel func()) {
	t := &tap{fn: fn}
	b.mu.Lock()
	if b.taps == nil {
		b.taps = map[*tap]struct{}{}
	}
	b.taps[t] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.taps, t)
		b.mu.Unlock()
	}
}

// Subscribe starts a subscription to every event published from now on.
func (b *Bus) Subscribe() *Subscription {
	s := &Subscription{bus: b, wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Subscription is one subscriber's queue.
type Subscription struct {
	bus   *Bus
	mu    sync.Mutex
	queue []Event
	err   error
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (s *Subscription) push(e Event) {
	s.mu.Lock()
	if s.err == nil {
		if len(s.queue) >= MaxQueue {
			s.err = ErrLagged
			s.queue = nil
		} else {
			s.queue = append(s.queue, e)
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next returns the queued events, waiting for at least one, or the
// subscription's error, or nil events when stop is closed or the
// subscription closed.
func (s *Subscription) Next(stop <-chan struct{}) ([]Event, error) {
	for {
		s.mu.Lock()
		q, err := s.queue, s.err
		s.queue = nil
		s.mu.Unlock()
		if len(q) > 0 || err != nil {
			return q, err
		}
		select {
		case <-s.wake:
		case <-stop:
			return nil, nil
		case <-s.done:
			return nil, nil
		}
	}
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.done)
	})
}
