// Package compat drives a live berthd through its Docker Engine API socket
// with the real clients, unmodified: the docker CLI (DockerCLI), and where
// installed docker-compose 1.29 and the Python docker SDK. Images come
// from a registry on loopback inside the test, built offline from
// busybox-static. Every test needs root and the binaries of `make build`
// (BERTH_BIN).
package compat

import (
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/testutil"
)

// engine is a private berthd with the docker CLI pointed at it and the
// busybox image pulled and tagged busybox:latest.
type engine struct {
	*testutil.Berthd
	t   *testing.T
	cli string
	reg *testutil.Registry
	// Busybox is the image's name in the registry (busybox:latest is
	// its local tag).
	Busybox string
}

// newEngine starts berthd (extra TOML lines appended to its config) and
// loads busybox through the docker CLI: pull from the loopback registry,
// tag as busybox:latest.
func newEngine(t *testing.T, extraConfig string, opts ...testutil.ImageOption) *engine {
	t.Helper()
	cli := testutil.DockerCLI(t)
	reg := testutil.NewRegistry(t)
	reg.Push(t, "busybox:latest", testutil.BusyboxImage(t, opts...))
	e := &engine{Berthd: testutil.StartBerthd(t, extraConfig), t: t, cli: cli, reg: reg, Busybox: reg.Ref("busybox:latest")}
	t.Cleanup(e.removeAll)
	e.docker("pull", "-q", e.Busybox)
	e.docker("tag", e.Busybox, "busybox:latest")
	return e
}

// docker runs the docker CLI and fails the test unless it succeeds; it
// returns stdout without the trailing newline.
func (e *engine) docker(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.Run("", e.cli, args...)
	if err != nil {
		e.t.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimRight(out, "\n")
}

// dockerIn is docker with stdin.
func (e *engine) dockerIn(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.Run(stdin, e.cli, args...)
	if err != nil {
		e.t.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimRight(out, "\n")
}

// dockerFails runs the docker CLI, fails the test if it succeeds, and
// returns its stderr, for the error cases.
func (e *engine) dockerFails(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.Run("", e.cli, args...)
	if err == nil {
		e.t.Fatalf("docker %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}

// removeAll removes every container, so a test (even a failed one) leaves
// no processes, mounts or addresses behind.
func (e *engine) removeAll() {
	out, _, err := e.Run("", e.cli, "ps", "-aq")
	if err != nil {
		return
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, errOut, err := e.Run("", e.cli, append([]string{"rm", "-f"}, ids...)...); err != nil {
			e.t.Errorf("cleanup: docker rm -f: %v: %s", err, errOut)
		}
	}
}

func TestVersionAndPing(t *testing.T) {
	e := &engine{Berthd: testutil.StartBerthd(t, ""), t: t, cli: testutil.DockerCLI(t)}
	if got := e.docker("version", "--format", "{{.Server.Platform.Name}} {{.Server.APIVersion}}"); got != "berth 1.57" {
		t.Errorf("docker version: %q, want the server berth speaking API 1.57", got)
	}
	// The CLI negotiates down to its own newest version.
	if got := e.docker("version", "--format", "{{.Client.APIVersion}}"); got == "" {
		t.Errorf("no negotiated client API version")
	}
}
