package cgroupstats

import (
	"sync"
	"time"
)

// MinInterval is the shortest time between two samples a rate is computed
// over; a call sooner than that after the kept sample gets the rate
// computed last time, so that two requests a millisecond apart do not
// report a rate made of noise.
const MinInterval = 100 * time.Millisecond

// forgetAfter drops the sample of an id not asked about for this long (a
// removed container): the kubelet asks every 10–15 s.
const forgetAfter = 10 * time.Minute

// Rate is the CPU usage in nano cores (ns of CPU per s of wall time)
// between two cumulative samples. ok is false when it cannot be known: no
// time passed, or the counter went backwards (a different cgroup under the
// same id, or a pod whose container was removed).
func Rate(prevNanos uint64, prevTime time.Time, nanos uint64, now time.Time) (nanoCores uint64, ok bool) {
	dt := now.Sub(prevTime)
	if dt <= 0 || nanos < prevNanos {
		return 0, false
	}
	return uint64(float64(nanos-prevNanos) / dt.Seconds()), true
}

// Rates keeps the previous CPU sample of each id, in memory only, to turn
// the cumulative counter into a rate. Its zero value is ready to use and
// it is safe for concurrent use.
type Rates struct {
	mu    sync.Mutex
	last  map[string]rateEntry
	swept time.Time
}

type rateEntry struct {
	nanos    uint64
	at       time.Time
	rate     uint64
	hasRate  bool
	lastSeen time.Time
}

// NanoCores records the sample (nanos at t) for id and returns the rate
// since the previous one. The first sample of an id has no rate (ok is
// false): the CRI field is then left unset and the kubelet, which treats a
// nil usage_nano_cores as "compute it yourself", derives it from its own
// cache, as it does for containerd.
func (r *Rates) NanoCores(id string, nanos uint64, t time.Time) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]rateEntry{}
	}
	r.sweep(t)
	prev, seen := r.last[id]
	if seen && t.Sub(prev.at) < MinInterval && t.Sub(prev.at) >= 0 && nanos >= prev.nanos {
		prev.lastSeen = t
		r.last[id] = prev
		return prev.rate, prev.hasRate
	}
	e := rateEntry{nanos: nanos, at: t, lastSeen: t}
	if seen {
		e.rate, e.hasRate = Rate(prev.nanos, prev.at, nanos, t)
	}
	r.last[id] = e
	return e.rate, e.hasRate
}

// Forget drops id's sample (a container that was removed).
func (r *Rates) Forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, id)
}

// Len is the number of ids with a sample.
func (r *Rates) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.last)
}

// sweep drops stale samples, at most once a minute so that a request
// costs O(1) amortised.
func (r *Rates) sweep(now time.Time) {
	if now.Sub(r.swept) < time.Minute {
		return
	}
	r.swept = now
	for id, e := range r.last {
		if now.Sub(e.lastSeen) > forgetAfter {
			delete(r.last, id)
		}
	}
}
