package imageservice

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFlightsShareWork(t *testing.T) {
	var f flights[int]
	var runs atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = f.do(context.Background(), "k", nil, func(ctx context.Context, _ func(Progress)) (int, error) {
				runs.Add(1)
				<-release
				return 42, nil
			})
		}()
	}
	waitFlight(t, &f, "k", func(fl *flight[int]) bool { return fl.waiters == 5 })
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Errorf("work ran %d times for 5 callers", runs.Load())
	}
	for i, r := range results {
		if r != 42 {
			t.Errorf("caller %d got %d", i, r)
		}
	}
}

// One caller giving up does not cancel the work the others wait for; the
// last one leaving cancels it, waits for it, and a later caller starts
// afresh instead of joining cancelled work.
func TestFlightsCancellation(t *testing.T) {
	var f flights[int]
	started := make(chan struct{})
	var cleanedUp atomic.Bool
	work := func(ctx context.Context, _ func(Progress)) (int, error) {
		close(started)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond)
		cleanedUp.Store(true)
		return 0, ctx.Err()
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := f.do(ctx1, "k", nil, work); errs <- err }()
	<-started
	go func() { _, err := f.do(ctx2, "k", nil, work); errs <- err }()
	waitFlight(t, &f, "k", func(fl *flight[int]) bool { return fl.waiters == 2 })
	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	if cleanedUp.Load() {
		t.Fatal("work was cancelled while a caller still waited")
	}
	cancel2()
	<-errs
	if !cleanedUp.Load() {
		t.Error("the last caller returned before the work had cleaned up")
	}
	v, err := f.do(context.Background(), "k", nil, func(context.Context, func(Progress)) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Errorf("fresh call after cancellation = %d, %v", v, err)
	}
}

func TestFlightsProgressReachesEveryCaller(t *testing.T) {
	var f flights[int]
	var a, b atomic.Int32
	gate := make(chan struct{})
	done := make(chan struct{})
	go func() {
		f.do(context.Background(), "k", func(Progress) { a.Add(1) }, func(ctx context.Context, report func(Progress)) (int, error) {
			<-gate
			report(Progress{Status: StatusDone})
			return 1, nil
		})
		close(done)
	}()
	waitFlight(t, &f, "k", func(fl *flight[int]) bool { return len(fl.subs) == 1 })
	go f.do(context.Background(), "k", func(Progress) { b.Add(1) }, nil)
	waitFlight(t, &f, "k", func(fl *flight[int]) bool { return len(fl.subs) == 2 })
	close(gate)
	<-done
	if a.Load() != 1 || b.Load() != 1 {
		t.Errorf("progress reports: first caller %d, second %d", a.Load(), b.Load())
	}
}

// waitFlight waits until the flight running for key satisfies cond, which
// sees it under its locks.
func waitFlight[T any](t *testing.T, f *flights[T], key string, cond func(*flight[T]) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		f.mu.Lock()
		fl := f.m[key]
		ok := false
		if fl != nil {
			fl.subsMu.Lock()
			ok = cond(fl)
			fl.subsMu.Unlock()
		}
		f.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("flight %q never reached the awaited state", key)
}
