package compat

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pythonSDK is a Python 3 with the docker SDK 5 (Debian's python3-docker):
// /usr/bin/python3 first, since a python3 earlier in PATH (pyenv) may carry
// another SDK or none. The test is skipped when there is none.
func pythonSDK(t *testing.T) string {
	t.Helper()
	var cands []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			cands = append(cands, path)
		}
	}
	for _, py := range cands {
		out, err := exec.Command(py, "-c", "import docker; print(docker.__version__)").Output()
		if err == nil && strings.HasPrefix(string(out), "5.") {
			return py
		}
	}
	t.Skip("no python3 with the docker SDK 5 (apt-get install python3-docker)")
	return ""
}

// TestPythonSDK runs testdata/pysdk_smoke.py, the docker SDK for Python
// unmodified: version and ping, pull and get, a foreground run and one
// that fails, run -d with logs (split by stream), exec_run (exit code,
// demux, env, workdir, user), stop, wait and remove, volumes and networks
// created, used, listed by label or name and removed. The script checks
// each reply against docker's behaviour; this test then checks with the
// docker CLI that it left nothing behind.
func TestPythonSDK(t *testing.T) {
	py := pythonSDK(t)
	e := newEngine(t, "")
	repo, tag := e.Busybox[:strings.LastIndex(e.Busybox, ":")], e.Busybox[strings.LastIndex(e.Busybox, ":")+1:]
	out, errOut, err := e.Run("", py, "testdata/pysdk_smoke.py", "bpy", repo, tag)
	t.Logf("pysdk_smoke.py:\n%s", out)
	if err != nil {
		t.Fatalf("pysdk_smoke.py: %v\n%s", err, lastLines(errOut, 30))
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "PASS") {
		t.Fatalf("pysdk_smoke.py did not get to the end")
	}
	e.checkEmpty()
}

// checkEmpty fails the test unless the engine holds no container, no
// volume and only docker's three networks: what a client that cleans up
// after itself leaves.
func (e *engine) checkEmpty() {
	e.t.Helper()
	if got := e.docker("ps", "-aq"); got != "" {
		e.t.Errorf("containers left behind: %q", got)
	}
	if got := e.docker("volume", "ls", "-q"); got != "" {
		e.t.Errorf("volumes left behind: %q", got)
	}
	if got := strings.Fields(e.docker("network", "ls", "--format", "{{.Name}}")); strings.Join(sorted(got), " ") != "bridge host none" {
		e.t.Errorf("networks: %q, want bridge, host and none", got)
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// lastLines is the end of a client's output, where Python's traceback
// names the failing step.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
