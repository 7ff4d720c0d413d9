package compat

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pastEvents is `docker events` over what already happened: since (as
// the user gives it) until a moment from now (the CLI sends "--until 0s"
// in whole seconds, which may leave out the last events).
func (e *engine) pastEvents(since, format string, filters ...string) []string {
	e.t.Helper()
	until := time.Now().Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	args := []string{"events", "--since", since, "--until", until, "--format", format}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	out := e.docker(args...)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// inOrder reports whether want appear in got in this order (others may
// come between).
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestEventsPast(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "--name", "first", "busybox", "true")
	got := e.pastEvents("1m", "{{.Action}} {{.Actor.Attributes.name}}", "type=container")
	if !inOrder(got, []string{"create first", "start first", "die first"}) {
		t.Errorf("docker events --since 1m --filter type=container:\n%s", strings.Join(got, "\n"))
	}
	for _, g := range got {
		if !strings.HasSuffix(g, " first") {
			t.Errorf("an event of another actor passed the filter: %q", g)
		}
	}

	// A window in RFC 3339 holds only what happened in it; filters by
	// event and label; the exit code and labels are attributes.
	from := time.Now().UTC().Format(time.RFC3339Nano)
	for _, run := range [][]string{{"--name", "second", "--label", "tier=back", "busybox", "sh", "-c", "exit 3"}, {"--name", "third", "busybox", "sh", "-c", "exit 4"}} {
		if _, errOut, err := e.Run("", e.cli, append([]string{"run"}, run...)...); err == nil {
			t.Fatalf("docker run %v succeeded, want its exit code: %s", run, errOut)
		}
	}
	to := time.Now().UTC().Format(time.RFC3339Nano)
	window := strings.Split(e.docker("events", "--since", from, "--until", to, "--filter", "event=die", "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"), "\n")
	if strings.Join(window, ",") != "second 3,third 4" {
		t.Errorf("die events between %s and %s: %q, want second 3, third 4", from, to, window)
	}
	labelled := e.pastEvents(from, "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.tier}}", "label=tier=back", "event=die")
	if strings.Join(labelled, ",") != "die second back" {
		t.Errorf("die events with label tier=back: %q", labelled)
	}
	byName := e.pastEvents(from, "{{.Action}}", "container=third", "event=start")
	if strings.Join(byName, ",") != "start" {
		t.Errorf("start events of container third: %q", byName)
	}

	// Image and volume events come through the same stream.
	e.docker("tag", "busybox", "another:tag")
	e.docker("volume", "create", "evvol")
	got = e.pastEvents(from, "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}", "type=image", "type=volume")
	if !inOrder(got, []string{"image tag another:tag"}) || !slicesContainsPrefix(got, "volume create") {
		t.Errorf("image and volume events: %q", got)
	}

	// The JSON form: docker's Message, with the pre-1.52 fields the CLI's
	// API version (1.50) still gets.
	var m map[string]any
	lines := e.pastEvents(from, "{{json .}}", "event=die", "container=second")
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &m) != nil {
		t.Fatalf("one die event as JSON: %q", lines)
	}
	if m["scope"] != "local" || m["status"] != "die" || m["Type"] != "container" || m["timeNano"] == nil {
		t.Errorf("die event as JSON: %v", m)
	}

	if out := e.dockerFails("events", "--since", "yesterday-ish", "--until", "0s"); !strings.Contains(out, "yesterday-ish") {
		t.Errorf("a bad --since: %s", out)
	}
}

func slicesContainsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestEventsLive: a running `docker events` sees a later `docker run`,
// and only what its filter lets through.
func TestEventsLive(t *testing.T) {
	e := newEngine(t, "")
	cmd := exec.Command(e.cli, "events", "--filter", "container=live", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	cmd.Env = e.Env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Wait until the stream is subscribed (info counts its listeners).
	for start := time.Now(); e.docker("info", "--format", "{{.NEventsListener}}") != "1"; {
		if time.Since(start) > 30*time.Second {
			t.Fatal("docker events never subscribed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.After(60 * time.Second)
	e.docker("run", "--name", "other", "busybox", "true")
	e.docker("run", "--name", "live", "busybox", "true")
	var got []string
	for !inOrder(got, []string{"create live", "start live", "die live"}) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("docker events ended; saw %q", got)
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("docker events saw %q, want create, start and die of live", got)
		}
	}
	for _, l := range got {
		if strings.HasSuffix(l, " other") {
			t.Errorf("the filter let through %q", l)
		}
	}
}
