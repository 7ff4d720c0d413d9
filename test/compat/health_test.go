package compat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type health struct {
	Status        string
	FailingStreak int
	Log           []struct {
		ExitCode int
		Output   string
	}
}

func (e *engine) health(name string) health {
	e.t.Helper()
	var h health
	out := e.docker("inspect", "--format", "{{json .State.Health}}", name)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		e.t.Fatalf("State.Health of %s: %q: %v", name, out, err)
	}
	return h
}

// TestHealthcheck: a failing check makes the container unhealthy after
// its retries, a passing one healthy again; inspect, ps and its health
// filter, and health_status events follow.
func TestHealthcheck(t *testing.T) {
	e := newEngine(t, "")
	since := time.Now().UTC().Format(time.RFC3339Nano)
	e.docker("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "2", "busybox", "sleep", "1000")
	// Two failed checks, a second apart, are needed for unhealthy: it is
	// "starting" until then.
	describe := func() string { return e.docker("inspect", "--format", "{{json .State.Health}}", "hc") }
	e.eventually(30*time.Second, func() bool {
		return strings.Contains(e.docker("ps", "--format", "{{.Status}}", "--filter", "name=hc"), "(health: starting)")
	}, describe)
	e.eventually(30*time.Second, func() bool { return e.health("hc").Status == "unhealthy" }, describe)
	if h := e.health("hc"); h.FailingStreak < 2 || len(h.Log) == 0 || h.Log[len(h.Log)-1].ExitCode != 1 {
		t.Errorf("unhealthy: %+v, want a failing streak ≥ 2 and the failed run logged", h)
	}
	if got := e.docker("ps", "-q", "--filter", "health=unhealthy"); got == "" {
		t.Errorf("docker ps --filter health=unhealthy lists nothing")
	}

	e.docker("exec", "hc", "touch", "/tmp/ok")
	e.eventually(30*time.Second, func() bool { return e.health("hc").Status == "healthy" }, describe)
	if h := e.health("hc"); h.FailingStreak != 0 || len(h.Log) > 5 {
		t.Errorf("healthy: %+v, want no failing streak and at most 5 results", h)
	}
	if got := e.docker("ps", "--format", "{{.Names}} {{.Status}}", "--filter", "health=healthy"); !strings.HasPrefix(got, "hc ") || !strings.Contains(got, "(healthy)") {
		t.Errorf("docker ps --filter health=healthy: %q", got)
	}
	evs := e.pastEvents(since, "{{.Action}} {{.Actor.Attributes.name}}", "event=health_status")
	if !inOrder(evs, []string{"health_status: unhealthy hc", "health_status: healthy hc"}) {
		t.Errorf("health_status events: %q", evs)
	}

	// The log keeps the last 5 results.
	e.eventually(30*time.Second, func() bool { return len(e.health("hc").Log) == 5 }, describe)
}

// TestHealthcheckTimeoutAndImage: a check that outlives its timeout
// fails with docker's message; --no-healthcheck leaves none.
func TestHealthcheckTimeout(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "slow", "--health-cmd", "sleep 10", "--health-interval", "1s", "--health-timeout", "1s", "busybox", "sleep", "1000")
	e.eventually(30*time.Second, func() bool {
		h := e.health("slow")
		return len(h.Log) > 0 && h.Log[0].ExitCode == -1
	}, func() string { return e.docker("inspect", "--format", "{{json .State.Health}}", "slow") })
	if out := e.health("slow").Log[0].Output; !strings.Contains(out, "Health check exceeded timeout (1s)") {
		t.Errorf("timed-out check's output: %q", out)
	}
	e.docker("run", "-d", "--name", "none", "--no-healthcheck", "busybox", "sleep", "1000")
	if got := e.docker("inspect", "--format", "{{.State.Health}}", "none"); got != "<nil>" {
		t.Errorf("--no-healthcheck: State.Health %s", got)
	}
}
