package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// newExecEngine is a private berthd with busybox pulled through the CRI
// door (the image is shared by both doors): the tests of exec, cp, diff,
// export, top and stats run their containers from e.Busybox, the
// registry's name, and need nothing of the image endpoints.
func newExecEngine(t *testing.T) *engine {
	t.Helper()
	reg := testutil.NewRegistry(t)
	reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	e := &engine{Berthd: testutil.StartBerthd(t, ""), t: t, cli: testutil.DockerCLI(t), reg: reg, Busybox: reg.Ref("busybox:latest")}
	t.Cleanup(e.removeAll)
	conn, err := grpc.NewClient("unix://"+e.CRISocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := runtimeapi.NewImageServiceClient(conn).PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.Busybox}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// exitCode runs the docker CLI and returns its exit code and output.
func (e *engine) exitCode(stdin string, args ...string) (int, string, string) {
	e.t.Helper()
	out, errOut, err := e.Run(stdin, e.cli, args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out, errOut
	case errors.As(err, &ee):
		return ee.ExitCode(), out, errOut
	}
	e.t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	return -1, "", ""
}

func TestExec(t *testing.T) {
	e := newExecEngine(t)
	since := strconv.FormatInt(time.Now().Unix()-1, 10)
	e.docker("run", "-d", "--name", "ctr", "-e", "FROM_RUN=yes", e.Busybox, "sleep", "1000")

	if got := e.docker("exec", "ctr", "echo", "hello"); got != "hello" {
		t.Errorf("exec echo: %q", got)
	}
	// stdout and stderr stay apart.
	code, out, errOut := e.exitCode("", "exec", "ctr", "sh", "-c", "echo out; echo err >&2; exit 7")
	if code != 7 || out != "out\n" || errOut != "err\n" {
		t.Errorf("exec exit 7: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The container's environment, with the exec's added.
	if got := e.docker("exec", "-e", "A=1", "ctr", "sh", "-c", "echo $A $FROM_RUN"); got != "1 yes" {
		t.Errorf("exec -e: %q", got)
	}
	if got := e.docker("exec", "-u", "nobody", "-w", "/tmp", "ctr", "sh", "-c", "id -u; pwd"); got != "65534\n/tmp" {
		t.Errorf("exec -u nobody -w /tmp: %q", got)
	}
	if got := e.docker("exec", "-u", "1234:5678", "ctr", "id"); !strings.Contains(got, "uid=1234") || !strings.Contains(got, "gid=5678") {
		t.Errorf("exec -u 1234:5678: %q", got)
	}
	// stdin reaches the command and its end ends it.
	if got := e.dockerIn("hi\nthere\n", "exec", "-i", "ctr", "cat"); got != "hi\nthere" {
		t.Errorf("exec -i cat: %q", got)
	}
	// A terminal: the command sees a tty, output is not framed.
	if got := e.docker("exec", "-t", "ctr", "sh", "-c", "tty; echo $TERM"); !strings.HasPrefix(got, "/dev/pts/") || !strings.HasSuffix(strings.TrimSpace(got), "xterm") {
		t.Errorf("exec -t: %q", got)
	}
	// Detached: it runs in the background.
	e.docker("exec", "-d", "ctr", "sh", "-c", "echo done > /tmp/detached")
	waitFor(t, func() bool {
		code, out, _ := e.exitCode("", "exec", "ctr", "cat", "/tmp/detached")
		return code == 0 && out == "done\n"
	})
	// What cannot start exits 126, with the reason on stderr once.
	for _, args := range [][]string{{"ctr", "/no/such/binary"}, {"-w", "/no/such/dir", "ctr", "true"}, {"-u", "nosuch", "ctr", "true"}} {
		code, _, errOut := e.exitCode("", append([]string{"exec"}, args...)...)
		if code != 126 || errOut == "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("docker exec %v: exit %d, stderr %q; want 126 and one line", args, code, errOut)
		}
	}
	if _, _, errOut := e.exitCode("", "exec", "-u", "nosuch", "ctr", "true"); errOut != "unable to find user nosuch: no matching entries in passwd file\n" {
		t.Errorf("docker exec -u nosuch: %q", errOut)
	}

	// docker's events of an exec.
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	events := e.docker("events", "--since", since, "--until", until, "--filter", "container=ctr", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}")
	for _, want := range []string{"exec_create: echo hello", "exec_start: echo hello", "exec_die 7"} {
		if !strings.Contains(events, want) {
			t.Errorf("docker events: no %q in\n%s", want, events)
		}
	}

	e.docker("pause", "ctr")
	if msg := e.dockerFails("exec", "ctr", "true"); !strings.Contains(msg, "is paused, unpause the container before exec") {
		t.Errorf("exec on a paused container: %q", msg)
	}
	e.docker("unpause", "ctr")

	e.docker("stop", "-t", "0", "ctr")
	if msg := e.dockerFails("exec", "ctr", "true"); !strings.Contains(msg, "is not running") {
		t.Errorf("exec on a stopped container: %q", msg)
	}
	if msg := e.dockerFails("exec", "nosuch", "true"); !strings.Contains(msg, "No such container: nosuch") {
		t.Errorf("exec on an unknown container: %q", msg)
	}
}

// TestExecInteractiveTTY drives `docker exec -it ctr sh` through a real
// terminal (script(1) gives the CLI one).
func TestExecInteractiveTTY(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed")
	}
	e := newExecEngine(t)
	e.docker("run", "-d", "--name", "ctr", e.Busybox, "sleep", "1000")
	cmd := e.cli + " exec -it ctr sh -c 'tty; exit 3'"
	out, _, err := e.Run("", script, "-qec", cmd, "/dev/null")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("docker exec -it: %v, want exit 3; output %q", err, out)
	}
	if !strings.Contains(out, "/dev/pts/") {
		t.Errorf("docker exec -it: no terminal in the container: %q", out)
	}

}

// apiJSON calls the Engine API (API 1.50, as the CLI) and decodes the JSON
// reply into out (when not nil); the call must succeed.
func (e *engine) apiJSON(method, path, body string, out any) {
	e.t.Helper()
	code, b := e.api(method, "/v1.50"+path, body)
	if code/100 != 2 {
		e.t.Fatalf("%s %s: %d: %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// TestExecDetachAndInspect starts an exec with a terminal over a hijacked
// connection, as the CLI does, and types ^P^Q: the connection ends, the
// command goes on, and GET /exec/{id}/json shows it running with its pid,
// then its exit code.
func TestExecDetachAndInspect(t *testing.T) {
	e := newExecEngine(t)
	e.docker("run", "-d", "--name", "ctr", e.Busybox, "sleep", "1000")
	var created struct{ ID string }
	e.apiJSON("POST", "/containers/ctr/exec", `{"AttachStdin":true,"AttachStdout":true,"Tty":true,"Cmd":["sh","-c","while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 5"]}`, &created)

	conn, err := net.Dial("unix", e.DockerSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"Tty":true}`
	fmt.Fprintf(conn, "POST /v1.50/exec/%s/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %d\r\n\r\n%s", created.ID, len(body), body)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("exec start: %q %v", status, err)
	}
	var inspect struct {
		Running  bool
		ExitCode *int
		Pid      int
	}
	waitFor(t, func() bool {
		e.apiJSON("GET", "/exec/"+created.ID+"/json", "", &inspect)
		return inspect.Running
	})
	if inspect.Pid <= 0 {
		t.Errorf("a running exec's pid: %d", inspect.Pid)
	}
	conn.Write([]byte{0x10, 0x11})
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the connection did not end after ^P^Q: %v", err)
	}
	e.apiJSON("GET", "/exec/"+created.ID+"/json", "", &inspect)
	if !inspect.Running {
		t.Fatalf("the exec stopped when its client detached")
	}
	e.docker("exec", "ctr", "touch", "/tmp/go")
	waitFor(t, func() bool {
		e.apiJSON("GET", "/exec/"+created.ID+"/json", "", &inspect)
		return !inspect.Running && inspect.ExitCode != nil
	})
	if *inspect.ExitCode != 5 {
		t.Errorf("exit code after detach: %d, want 5", *inspect.ExitCode)
	}
}

func TestTopAndStats(t *testing.T) {
	e := newExecEngine(t)
	e.docker("run", "-d", "--name", "ctr", e.Busybox, "sleep", "1000")
	top := e.docker("top", "ctr")
	lines := strings.Split(top, "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[1], "sleep 1000") {
		t.Errorf("docker top: %q", top)
	}
	if got := e.docker("top", "ctr", "-o", "pid,comm"); !strings.Contains(got, "sleep") || strings.Contains(got, "UID") {
		t.Errorf("docker top -o pid,comm: %q", got)
	}
	if msg := e.dockerFails("top", "ctr", "-o", "user=PID"); !strings.Contains(msg, "is not allowed") {
		t.Errorf("docker top renaming PID: %q", msg)
	}

	out := e.docker("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}", "ctr")
	f := strings.Split(out, "|")
	if len(f) != 6 || f[0] != "ctr" || !strings.HasSuffix(f[1], "%") || !strings.Contains(f[2], " / ") || !strings.Contains(f[3], " / ") {
		t.Fatalf("docker stats: %q", out)
	}
	if f[2] == "0B / 0B" {
		t.Errorf("docker stats: no memory figures: %q", out)
	}
	if n, err := strconv.Atoi(f[5]); err != nil || n != 1 {
		t.Errorf("docker stats: PIDs %q, want 1 (sleep)", f[5])
	}

	// The API's figures: docker's keys, cgroup v1 or v2.
	var st container.StatsResponse
	e.apiJSON("GET", "/containers/ctr/stats?stream=false", "", &st)
	if st.PreRead.IsZero() || st.CPUStats.SystemUsage == 0 || st.CPUStats.CPUUsage.TotalUsage == 0 || st.CPUStats.OnlineCPUs == 0 {
		t.Errorf("stats?stream=false: cpu %+v, preread %v", st.CPUStats, st.PreRead)
	}
	if st.MemoryStats.Usage == 0 || st.MemoryStats.Limit == 0 || len(st.MemoryStats.Stats) == 0 {
		t.Errorf("stats: memory %+v", st.MemoryStats)
	}
	if _, ok := st.Networks["eth0"]; !ok || st.PidsStats.Current != 1 || st.Name != "/ctr" {
		t.Errorf("stats: networks %v, pids %+v, name %q", st.Networks, st.PidsStats, st.Name)
	}
	st = container.StatsResponse{}
	e.apiJSON("GET", "/containers/ctr/stats?stream=false&one-shot=true", "", &st)
	if !st.PreRead.IsZero() || st.Read.IsZero() {
		t.Errorf("stats one-shot: read %v, preread %v", st.Read, st.PreRead)
	}

	e.docker("stop", "-t", "0", "ctr")
	if msg := e.dockerFails("top", "ctr"); !strings.Contains(msg, "is not running") {
		t.Errorf("docker top of a stopped container: %q", msg)
	}
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within a minute")
}
