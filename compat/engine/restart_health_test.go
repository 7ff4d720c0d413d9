package engine

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/store"
)

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	last := time.Duration(0)
	for i := 0; i < 12; i++ {
		last = nextBackoff(last, time.Second)
		got = append(got, last)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, time.Minute, time.Minute}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("back-off (-want +got):\n%s", d)
	}
	if d := nextBackoff(time.Minute, 10*time.Second); d != 100*time.Millisecond {
		t.Errorf("after running 10 s the back-off is %s, want it reset to 100ms", d)
	}
}

func TestRestartRules(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		c                    store.Container
		afterExit, atStartup bool
	}{
		{"no policy", store.Container{ExitCode: 1}, false, false},
		{"no", store.Container{RestartPolicy: store.RestartPolicy{Name: "no"}, ExitCode: 1}, false, false},
		{"always, exit 0", store.Container{RestartPolicy: store.RestartPolicy{Name: "always"}}, true, true},
		{"always, stopped by user", store.Container{RestartPolicy: store.RestartPolicy{Name: "always"}, StoppedByUser: true}, false, true},
		{"unless-stopped", store.Container{RestartPolicy: store.RestartPolicy{Name: "unless-stopped"}, ExitCode: 2}, true, true},
		{"unless-stopped, stopped by user", store.Container{RestartPolicy: store.RestartPolicy{Name: "unless-stopped"}, StoppedByUser: true}, false, false},
		{"on-failure, exit 0", store.Container{RestartPolicy: store.RestartPolicy{Name: "on-failure"}}, false, false},
		{"on-failure, exit 1", store.Container{RestartPolicy: store.RestartPolicy{Name: "on-failure"}, ExitCode: 1, RestartCount: 50}, true, true},
		{"on-failure:2, 1 restart", store.Container{RestartPolicy: store.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}, ExitCode: 1, RestartCount: 1}, true, true},
		{"on-failure:2, 2 restarts", store.Container{RestartPolicy: store.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}, ExitCode: 1, RestartCount: 2}, false, false},
		{"on-failure, stopped by user", store.Container{RestartPolicy: store.RestartPolicy{Name: "on-failure"}, ExitCode: 137, StoppedByUser: true}, false, true},
		{"always, --rm", store.Container{RestartPolicy: store.RestartPolicy{Name: "always"}, AutoRemove: true}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := restartAfterExit(tc.c); got != tc.afterExit {
				t.Errorf("restartAfterExit = %v, want %v", got, tc.afterExit)
			}
			if got := restartAtDaemonStart(tc.c); got != tc.atStartup {
				t.Errorf("restartAtDaemonStart = %v, want %v", got, tc.atStartup)
			}
		})
	}
}

func TestApplyHealthResult(t *testing.T) {
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration, code int) store.HealthResult {
		return store.HealthResult{Start: started.Add(d), ExitCode: code}
	}
	h := &store.Health{Status: "starting"}
	apply := func(r store.HealthResult) string {
		applyHealthResult(h, r, started, 10*time.Second, 2)
		return h.Status
	}
	steps := []struct {
		r      store.HealthResult
		status string
		streak int
	}{
		{at(time.Second, 1), "starting", 0},     // in the start period: not counted
		{at(5*time.Second, 1), "starting", 0},   // still
		{at(11*time.Second, 1), "starting", 1},  // counted now
		{at(12*time.Second, 0), "healthy", 0},   // a success
		{at(13*time.Second, 1), "healthy", 1},   // one failure is not enough
		{at(14*time.Second, 1), "unhealthy", 2}, // retries in a row
		{at(15*time.Second, 0), "healthy", 0},   // back
	}
	for i, st := range steps {
		if got := apply(st.r); got != st.status || h.FailingStreak != st.streak {
			t.Fatalf("step %d: %s streak %d, want %s streak %d", i, got, h.FailingStreak, st.status, st.streak)
		}
	}
	if len(h.Log) != healthLogEntries || !h.Log[len(h.Log)-1].Start.Equal(started.Add(15*time.Second)) {
		t.Errorf("log keeps %d entries ending %v, want the last %d", len(h.Log), h.Log[len(h.Log)-1].Start, healthLogEntries)
	}
}

func TestCancelRestart(t *testing.T) {
	s := &Server{}
	if s.cancelRestart("c1") || s.restarting("c1") {
		t.Fatal("no restarter yet, yet a restart pending")
	}
	s.restarts = &restarter{s: s, backoff: map[string]time.Duration{}, pending: map[string]uint64{"c1": 7}}
	if !s.restarting("c1") || s.restarting("c2") {
		t.Error("restarting: want c1 only")
	}
	if !s.cancelRestart("c1") || s.restarting("c1") || s.cancelRestart("c1") {
		t.Error("cancelRestart: want c1's pending restart dropped once")
	}
}
