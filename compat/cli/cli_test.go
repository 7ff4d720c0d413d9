package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
)

// berth runs the CLI in-process with args, a private config directory and
// no DOCKER_* variables but those in env, and returns stdout, stderr and
// the error.
func berth(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"} {
		t.Setenv(k, "")
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	dockerCli, err := command.NewDockerCli(
		command.WithInputStream(io.NopCloser(strings.NewReader(""))),
		command.WithOutputStream(&out), command.WithErrorStream(&errOut),
		command.WithBaseContext(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), dockerCli, args)
	return out.String(), errOut.String(), err
}

func TestDefaultHost(t *testing.T) {
	inspect := []string{"context", "inspect", "--format", "{{.Endpoints.docker.Host}}"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"berthd's socket by default", nil, inspect, DefaultHost},
		{"the default context names berthd's socket", nil, append(inspect, "default"), DefaultHost},
		{"-H wins", nil, append([]string{"-H", "tcp://127.0.0.1:2375"}, inspect...), "tcp://127.0.0.1:2375"},
		{"DOCKER_HOST wins", map[string]string{"DOCKER_HOST": "unix:///tmp/x.sock"}, inspect, "unix:///tmp/x.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := berth(t, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("%v: %s", err, errOut)
			}
			if got := strings.TrimSpace(out); got != tc.want {
				t.Errorf("host %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDefaultsToBerthd(t *testing.T) {
	for _, tc := range []struct {
		context    string
		hosts      []string
		dockerHost string
		want       bool
	}{
		{"default", nil, "", true},
		{"default", []string{"tcp://h:2375"}, "", false},
		{"default", nil, "unix:///x.sock", false},
		{"remote", nil, "", false},
	} {
		if got := defaultsToBerthd(tc.context, tc.hosts, tc.dockerHost); got != tc.want {
			t.Errorf("defaultsToBerthd(%q, %q, %q) = %v, want %v", tc.context, tc.hosts, tc.dockerHost, got, tc.want)
		}
	}
}

func TestClassicBuilderByDefault(t *testing.T) {
	t.Setenv("DOCKER_BUILDKIT", "")
	os.Unsetenv("DOCKER_BUILDKIT")
	classicBuilderByDefault()
	if v, ok := os.LookupEnv("DOCKER_BUILDKIT"); !ok || v != "0" {
		t.Errorf("unset: DOCKER_BUILDKIT=%q (set %v), want 0", v, ok)
	}
	t.Setenv("DOCKER_BUILDKIT", "1")
	classicBuilderByDefault()
	if v := os.Getenv("DOCKER_BUILDKIT"); v != "1" {
		t.Errorf("the user's DOCKER_BUILDKIT=1 became %q", v)
	}
}

func TestVersionFlag(t *testing.T) {
	out, _, err := berth(t, nil, "--version")
	if err != nil || !strings.HasPrefix(out, "berth version ") {
		t.Fatalf("berth --version: %q, %v", out, err)
	}
}
