package namereg

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestRetryGetsTheFinishedObject(t *testing.T) {
	r := New()
	var creates atomic.Int32
	slow := func(ctx context.Context) (string, error) {
		creates.Add(1)
		time.Sleep(100 * time.Millisecond)
		return "id1", nil
	}
	// The first caller gives up (the kubelet's timeout) while the create runs.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Create(ctx, "pod", slow); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first call = %v", err)
	}
	// The retry joins the create still running and gets its result.
	id, err := r.Create(context.Background(), "pod", slow)
	if err != nil || id != "id1" || creates.Load() != 1 {
		t.Fatalf("retry = %q, %v after %d creates", id, err, creates.Load())
	}
	// Now someone has it: a third request is a duplicate.
	if _, err := r.Create(context.Background(), "pod", slow); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("duplicate = %v", err)
	}
}

func TestRetryAfterFinishGetsTheObject(t *testing.T) {
	r := New()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() { <-started; cancel() }()
	r.Create(ctx, "c", func(context.Context) (string, error) {
		close(started)
		time.Sleep(30 * time.Millisecond)
		return "id2", nil
	})
	// Wait for the create to finish, unclaimed: the retry must find it
	// done, not join it running.
	for running := true; running; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		_, running = r.running["c"]
		r.mu.Unlock()
	}
	id, err := r.Create(context.Background(), "c", func(context.Context) (string, error) { return "other", nil })
	if err != nil || id != "id2" {
		t.Errorf("retry after finish = %q, %v", id, err)
	}
}

func TestFailedCreateFreesTheName(t *testing.T) {
	r := New()
	boom := errors.New("boom")
	if _, err := r.Create(context.Background(), "x", func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if id, err := r.Create(context.Background(), "x", func(context.Context) (string, error) { return "ok", nil }); err != nil || id != "ok" {
		t.Errorf("after a failure: %q %v", id, err)
	}
	r.Release("x", "ok")
	if err := r.Reserve("x", "new"); err != nil {
		t.Errorf("Reserve after Release: %v", err)
	}
	if err := r.Reserve("x", "other"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Reserve of a held name = %v", err)
	}
}
