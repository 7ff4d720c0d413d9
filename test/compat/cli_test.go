package compat

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/testutil"
)

// berth runs bin/berth (`make build`) against the engine's berthd through
// DOCKER_HOST and fails the test unless it succeeds; it returns stdout
// without the trailing newline.
func (e *engine) berth(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.Run("", testutil.BerthBin(e.t, "berth"), args...)
	if err != nil {
		e.t.Fatalf("berth %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimRight(out, "\n")
}

// berthFails runs bin/berth, fails the test if it succeeds, and returns
// its exit code and stderr.
func (e *engine) berthFails(args ...string) (int, string) {
	e.t.Helper()
	out, errOut, err := e.Run("", testutil.BerthBin(e.t, "berth"), args...)
	if err == nil {
		e.t.Fatalf("berth %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	return exitCode(e.t, err), errOut
}

// TestCLIVersionHelpCompletion: berth names itself in its version, help,
// completion scripts and info, and talks to berthd's socket when nothing
// names another engine.
func TestCLIVersionHelpCompletion(t *testing.T) {
	e := &engine{Berthd: testutil.StartBerthd(t, ""), t: t}
	if got := e.berth("version", "--format", "{{.Client.Platform.Name}} {{.Server.Platform.Name}}"); got != "berth berth" {
		t.Errorf("berth version: client and server %q, want berth berth", got)
	}
	out := e.berth("version")
	for _, want := range []string{"Client: berth", "Server: berth", "Context:"} {
		if !strings.Contains(out, want) {
			t.Errorf("berth version has no %q:\n%s", want, out)
		}
	}
	if out := e.berth("--version"); !strings.HasPrefix(out, "berth version ") {
		t.Errorf("berth --version: %q", out)
	}
	if out := e.berth("system", "info"); !strings.Contains(out, "Client: berth") || !strings.Contains(out, "Server:") {
		t.Errorf("berth system info:\n%s", out)
	}

	help := e.berth("--help")
	if !strings.Contains(help, "Usage:  berth [OPTIONS] COMMAND") {
		t.Errorf("berth --help has no berth usage line:\n%s", help)
	}
	for _, gone := range []string{"swarm", "service", "stack", "secret", "plugin", "checkpoint"} {
		if regexp.MustCompile(`(?m)^  ` + gone + `\s`).MatchString(help) {
			t.Errorf("berth --help lists %s, which berthd does not serve", gone)
		}
	}
	for _, want := range []string{"compose", "pods", "completion"} {
		if !regexp.MustCompile(`(?m)^  ` + want + `\s`).MatchString(help) {
			t.Errorf("berth --help does not list %s", want)
		}
	}
	if out := e.berth("run", "--help"); !strings.Contains(out, "Usage:  berth run [OPTIONS] IMAGE") || strings.Contains(out, "docker run") {
		t.Errorf("berth run --help:\n%s", out)
	}
	for shell, want := range map[string]string{"bash": "__start_berth", "zsh": "#compdef berth", "fish": "complete -c berth"} {
		if out := e.berth("completion", shell); !strings.Contains(out, want) {
			t.Errorf("berth completion %s has no %q", shell, want)
		}
	}

	// Without -H, DOCKER_HOST or a context, the default context is
	// berthd's socket.
	var env []string
	for _, kv := range e.Env() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(testutil.BerthBin(t, "berth"), "context", "inspect", "--format", "{{.Endpoints.docker.Host}}")
	cmd.Env = env
	if got, err := cmd.Output(); err != nil || strings.TrimSpace(string(got)) != "unix:///run/berth/docker.sock" {
		t.Errorf("default context: %q, %v", got, err)
	}
	// -H reaches this berthd as DOCKER_HOST does.
	cmd = exec.Command(testutil.BerthBin(t, "berth"), "-H", e.DockerHost(), "version", "--format", "{{.Server.Platform.Name}}")
	cmd.Env = env
	if got, err := cmd.Output(); err != nil || strings.TrimSpace(string(got)) != "berth" {
		t.Errorf("berth -H %s version: %q, %v", e.DockerHost(), got, err)
	}
}

// TestCLIContainers: docker's container commands through bin/berth, with
// docker's output and exit codes.
func TestCLIContainers(t *testing.T) {
	e := newEngine(t, "")
	if got := e.berth("run", "--rm", "busybox", "echo", "hi"); got != "hi" {
		t.Errorf("berth run --rm busybox echo hi: %q", got)
	}
	if code, _ := e.berthFails("run", "--rm", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("berth run of exit 3: exit code %d", code)
	}
	if code, errOut := e.berthFails("run", "--rm", "--no-such-flag", "busybox"); code != 125 || !strings.Contains(errOut, "unknown flag: --no-such-flag") || !strings.Contains(errOut, "berth run --help") {
		t.Errorf("bad flag: exit %d: %s", code, errOut)
	}
	id := e.berth("run", "-d", "--name", "clitop", "busybox", "sleep", "300")
	if got := e.berth("ps", "-a", "--format", "{{.Names}} {{.Image}} {{.State}}"); got != "clitop busybox running" {
		t.Errorf("berth ps -a: %q, want only clitop running (run --rm left nothing)", got)
	}
	if got := e.berth("ps", "-q", "--no-trunc"); got != id {
		t.Errorf("berth ps -q --no-trunc: %q, want %q", got, id)
	}
	if got := e.berth("exec", "clitop", "sh", "-c", "echo $((6*7))"); got != "42" {
		t.Errorf("berth exec: %q", got)
	}
	if got := e.berth("inspect", "-f", "{{.Name}} {{.State.Running}}", "clitop"); got != "/clitop true" {
		t.Errorf("berth inspect: %q", got)
	}

	// The pods of both doors: the sandbox under clitop, once berthd
	// serves berth's pods endpoint; until then a clear error.
	out, errOut, err := e.Run("", testutil.BerthBin(t, "berth"), "pods", "--no-trunc", "--format", "json")
	switch {
	case err != nil && !strings.Contains(errOut, "does not serve GET /berth/pods/json"):
		t.Errorf("berth pods: %v: %s", err, errOut)
	case err == nil:
		found := false
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var p struct{ Name, Origin, State, Containers string }
			if json.Unmarshal([]byte(line), &p) != nil {
				t.Fatalf("berth pods --format json: %q", out)
			}
			found = found || p.Name == "clitop" && p.Origin == "docker" && p.State == "ready" && p.Containers == "1"
		}
		if !found {
			t.Errorf("berth pods has no ready docker pod clitop with 1 container:\n%s", out)
		}
	}

	e.berth("rm", "-f", "clitop")
	if got := e.berth("ps", "-aq"); got != "" {
		t.Errorf("berth ps -aq after rm -f: %q", got)
	}
}

// TestCLICompose drives `berth compose` (Compose v5 in bin/berth) through
// the web + client project of compose_test.go: config, up -d, the client
// reaching web by its service name, exec, ps, down -v; and a bad file
// that fails in compose and creates nothing.
func TestCLICompose(t *testing.T) {
	e := newEngine(t, "")
	if got := e.berth("compose", "version"); !strings.HasPrefix(got, "Docker Compose version v5.") {
		t.Errorf("berth compose version: %q", got)
	}
	file, err := filepath.Abs("testdata/compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := func(args ...string) string {
		t.Helper()
		return e.berth(append([]string{"compose", "-p", "bcli", "-f", file}, args...)...)
	}
	cfg := c("config", "--format", "json")
	var project struct {
		Name     string
		Services map[string]struct{ Image string }
		Volumes  map[string]struct{ Name string }
	}
	if err := json.Unmarshal([]byte(cfg), &project); err != nil {
		t.Fatalf("compose config --format json: %v\n%s", err, cfg)
	}
	if project.Name != "bcli" || len(project.Services) != 2 || project.Services["web"].Image != "busybox:latest" || project.Volumes["www"].Name != "bcli_www" {
		t.Errorf("compose config: %+v", project)
	}
	if got := c("config", "--services"); got != "web\nclient" && got != "client\nweb" {
		t.Errorf("compose config --services: %q", got)
	}

	c("up", "-d")
	// The client reached web by its service name.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(c("logs", "--no-color", "client"), "client got: hello from web") {
		if time.Now().After(deadline) {
			t.Fatalf("the client never fetched web; logs:\n%s", c("logs", "--no-color"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := c("ps", "--format", "{{.Service}} {{.State}}"); got != "client running\nweb running" {
		t.Errorf("compose ps: %q", got)
	}
	if got := c("exec", "-T", "web", "cat", "/www/index.html"); got != "hello from web" {
		t.Errorf("compose exec: %q", got)
	}
	if got := e.berth("ps", "--format", "{{.Names}}"); !strings.Contains(got, "bcli-web-1") || !strings.Contains(got, "bcli-client-1") {
		t.Errorf("berth ps after compose up: %q", got)
	}
	c("down", "-v")
	e.checkEmpty()

	bad, _ := filepath.Abs("testdata/compose/bad.yml")
	code, errOut := e.berthFails("compose", "-p", "bclibad", "-f", bad, "up", "-d")
	if code != 1 || !strings.Contains(errOut, "validating "+bad+": services.web.ports must be a array") {
		t.Errorf("compose up of bad.yml: exit %d: %s", code, errOut)
	}
	e.checkEmpty()
}
