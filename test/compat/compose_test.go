package compat

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// composeCLI is docker-compose 1.29 (Debian's docker-compose, Python, on
// docker-py); the test is skipped without it.
func composeCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("no docker-compose (apt-get install docker-compose)")
	}
	return p
}

// compose runs docker-compose on the project's file and fails the test
// unless it succeeds; it returns stdout.
func (e *engine) compose(bin, project, file string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.Run("", bin, append([]string{"-p", project, "-f", file}, args...)...)
	if err != nil {
		e.t.Fatalf("docker-compose %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimRight(out, "\n")
}

// waitCompose polls docker-compose until its stdout satisfies ok: what
// the containers print comes some time after `up` returns. It fails the
// test after a minute, with the last output.
func (e *engine) waitCompose(what string, ok func(string) bool, bin, project, file string, args ...string) {
	e.t.Helper()
	var out string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out = e.compose(bin, project, file, args...); ok(out) {
			return
		}
	}
	e.t.Fatalf("docker-compose %s: never %s; last output:\n%s", strings.Join(args, " "), what, out)
}

// psStates maps each container of `docker-compose ps` to its State
// column ("Up", "Exit 137").
func psStates(out string) map[string]string {
	states := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasPrefix(f[0], "bct_") {
			continue
		}
		switch {
		case strings.Contains(l, " Up "), strings.HasSuffix(l, " Up"):
			states[f[0]] = "Up"
		case strings.Contains(l, " Exit "):
			states[f[0]] = "Exit"
		default:
			states[f[0]] = l
		}
	}
	return states
}

// TestCompose drives docker-compose 1.29 through a two-service project
// (testdata/compose): web serves a file from a named volume with busybox
// httpd, client fetches it by the service name "web" over the project's
// network and prints it. up -d, ps, logs, exec, stop, start, down (the
// volume stays, with what exec wrote in it), up again, down -v (the
// volume goes), and an invalid file that fails in compose and creates
// nothing.
func TestCompose(t *testing.T) {
	bin := composeCLI(t)
	e := newEngine(t, "")
	file, err := filepath.Abs("testdata/compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	const project = "bct"
	c := func(args ...string) string { t.Helper(); return e.compose(bin, project, file, args...) }
	wantStates := func(want string) func(string) bool {
		return func(out string) bool {
			st := psStates(out)
			return len(st) == 2 && st["bct_web_1"] == want && st["bct_client_1"] == want
		}
	}

	c("up", "-d")
	if out := c("ps"); !wantStates("Up")(out) {
		t.Fatalf("docker-compose ps after up -d: %v, want both Up\n%s", psStates(out), out)
	}
	if ids := strings.Fields(c("ps", "-q")); len(ids) != 2 {
		t.Fatalf("docker-compose ps -q: %q, want 2 ids", ids)
	}
	// The client reached web by its service name.
	const got = "client got: hello from web"
	e.waitCompose("showed the client's fetch", func(out string) bool { return strings.Contains(out, got) }, bin, project, file, "logs", "--no-color", "client")
	if out := c("exec", "-T", "web", "cat", "/www/index.html"); out != "hello from web" {
		t.Errorf("exec cat /www/index.html: %q", out)
	}
	c("exec", "-T", "web", "sh", "-c", "echo persisted > /www/marker")
	// Compose's labels, network and volume, as the docker CLI sees them.
	if out := e.docker("inspect", "-f", `{{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.project"}}`, "bct_web_1"); out != "web bct" {
		t.Errorf("labels of bct_web_1: %q", out)
	}
	e.docker("network", "inspect", "bct_default")
	e.docker("volume", "inspect", "bct_www")

	c("stop")
	e.waitCompose("showed both stopped", wantStates("Exit"), bin, project, file, "ps")
	c("start")
	e.waitCompose("showed both up", wantStates("Up"), bin, project, file, "ps")
	e.waitCompose("showed the restarted client's second fetch", func(out string) bool { return strings.Count(out, got) == 2 }, bin, project, file, "logs", "--no-color", "client")

	// down keeps the named volume; up again finds what exec wrote there.
	c("down")
	if out := e.docker("ps", "-aq"); out != "" {
		t.Errorf("containers after down: %q", out)
	}
	if _, _, err := e.Run("", e.cli, "network", "inspect", "bct_default"); err == nil {
		t.Errorf("network bct_default is still there after down")
	}
	e.docker("volume", "inspect", "bct_www")
	c("up", "-d")
	if out := c("exec", "-T", "web", "cat", "/www/marker"); out != "persisted" {
		t.Errorf("the volume after down and up: /www/marker is %q", out)
	}
	c("down", "-v")
	e.checkEmpty()

	// An invalid file: compose's own error, nothing created.
	bad, _ := filepath.Abs("testdata/compose/bad.yml")
	out, errOut, err := e.Run("", bin, "-p", "bctbad", "-f", bad, "up", "-d")
	if err == nil {
		t.Fatalf("up -d of bad.yml succeeded: %s", out)
	}
	if !strings.Contains(errOut, "is invalid because") || !strings.Contains(errOut, "services.web.ports contains an invalid type") {
		t.Errorf("up -d of bad.yml: %s", errOut)
	}
	e.checkEmpty()
}
