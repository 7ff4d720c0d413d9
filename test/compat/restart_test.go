package compat

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond until it holds, failing the test with what
// describe says after the deadline.
func (e *engine) eventually(timeout time.Duration, cond func() bool, describe func() string) {
	e.t.Helper()
	for start := time.Now(); !cond(); {
		if time.Since(start) > timeout {
			e.t.Fatalf("after %s: %s", timeout, describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// state is a container's "Status RestartCount Pid".
func (e *engine) state(name string) (status string, restarts, pid int) {
	e.t.Helper()
	f := strings.Fields(e.docker("inspect", "--format", "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}", name))
	restarts, _ = strconv.Atoi(f[1])
	pid, _ = strconv.Atoi(f[2])
	return f[0], restarts, pid
}

func (e *engine) describe(name string) func() string {
	return func() string {
		return e.docker("inspect", "--format", "{{.Name}}: {{.State.Status}} exit {{.State.ExitCode}}, {{.RestartCount}} restarts", name)
	}
}

func TestRestartAlways(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "crashy", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 1")
	e.eventually(60*time.Second, func() bool { _, n, _ := e.state("crashy"); return n >= 3 }, e.describe("crashy"))
	if got := e.docker("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", "crashy"); got != "always" {
		t.Errorf("restart policy %q", got)
	}
	starts := e.pastEvents("1m", "{{.Action}}", "container=crashy", "event=start")
	if len(starts) < 3 {
		t.Errorf("start events of crashy: %q, want one per restart", starts)
	}
	// A user's start resets the count.
	e.docker("stop", "-t", "1", "crashy")
	e.docker("start", "crashy")
	if _, n, _ := e.state("crashy"); n > 1 {
		t.Errorf("restart count after docker start: %d, want it reset", n)
	}
	e.docker("rm", "-f", "crashy")
}

func TestRestartOnFailureLimit(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "twice", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
	e.docker("run", "-d", "--name", "fine", "--restart", "on-failure", "busybox", "true")
	e.eventually(60*time.Second, func() bool { st, n, _ := e.state("twice"); return st == "exited" && n == 2 }, e.describe("twice"))
	// The third failure is final: the events a while past it hold just
	// the first start and the two restarts.
	dies := e.pastEvents("1m", "{{.Action}}", "container=twice", "event=die")
	if len(dies) != 3 {
		t.Fatalf("die events of twice: %q, want 3", dies)
	}
	last := time.Now()
	until := last.Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	starts := strings.Split(e.docker("events", "--since", "1m", "--until", until, "--filter", "container=twice", "--filter", "event=start", "--format", "{{.Action}}"), "\n")
	if len(starts) != 3 {
		t.Errorf("start events of twice: %q, want 3 (run + 2 restarts)", starts)
	}
	if st, n, _ := e.state("twice"); st != "exited" || n != 2 {
		t.Errorf("twice: %s with %d restarts, want exited after 2", st, n)
	}
	if st, n, _ := e.state("fine"); st != "exited" || n != 0 {
		t.Errorf("on-failure after exit 0: %s with %d restarts, want exited, none", st, n)
	}
}

// TestRestartUserStopAndDaemonRestart: a container a user stopped stays
// stopped; when berthd restarts, "always" runs again, "unless-stopped"
// does not.
func TestRestartUserStopAndDaemonRestart(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "us", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	e.docker("run", "-d", "--name", "al", "--restart", "always", "busybox", "sleep", "1000")
	e.docker("stop", "-t", "1", "us")
	e.docker("stop", "-t", "1", "al")
	for _, name := range []string{"us", "al"} {
		if st, n, _ := e.state(name); st != "exited" || n != 0 {
			t.Errorf("%s after docker stop: %s, %d restarts", name, st, n)
		}
	}
	e.Stop()
	e.Start()
	e.eventually(30*time.Second, func() bool { st, _, _ := e.state("al"); return st == "running" }, e.describe("al"))
	if st, _, _ := e.state("us"); st != "exited" {
		t.Errorf("unless-stopped container a user stopped is %s after berthd restarted, want exited", st)
	}
}

// TestRestartAfterKill9: berthd is killed; an "always" container keeps
// running (adopted), one that died meanwhile runs again, a --rm one that
// exited meanwhile is removed.
func TestRestartAfterKill9(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "keeps", "--restart", "always", "busybox", "sleep", "1000")
	e.docker("run", "-d", "--name", "dies", "--restart", "always", "busybox", "sleep", "1000")
	e.docker("run", "-d", "--name", "gone", "--rm", "busybox", "sleep", "1000")
	_, _, keepsPid := e.state("keeps")
	_, _, diesPid := e.state("dies")
	_, _, gonePid := e.state("gone")
	e.Kill()
	for _, pid := range []int{diesPid, gonePid} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	e.Start()
	e.eventually(30*time.Second, func() bool { st, _, pid := e.state("dies"); return st == "running" && pid != diesPid }, e.describe("dies"))
	if st, _, pid := e.state("keeps"); st != "running" || pid != keepsPid {
		t.Errorf("keeps: %s pid %d, want still running as pid %d", st, pid, keepsPid)
	}
	e.eventually(30*time.Second, func() bool { return e.docker("ps", "-aq", "--filter", "name=gone") == "" }, func() string {
		return "the --rm container that exited while berthd was down is still there: " + e.docker("ps", "-a")
	})
}

func TestAutoRemove(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--rm", "--name", "brief", "busybox", "sh", "-c", "sleep 0.3")
	e.eventually(30*time.Second, func() bool { return e.docker("ps", "-aq", "--filter", "name=brief") == "" }, func() string { return "brief is still there: " + e.docker("ps", "-a") })
	got := e.pastEvents("1m", "{{.Action}}", "container=brief")
	if !inOrder(got, []string{"create", "start", "die", "destroy"}) {
		t.Errorf("events of a --rm container: %q", got)
	}
}
