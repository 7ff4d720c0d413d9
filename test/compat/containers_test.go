package compat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// waitFor polls cond (each poll runs docker commands) until it holds,
// failing the test after a generous deadline: containers need a moment
// to print or to change state, and no test may count on how long.
func (e *engine) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLogs waits until the container's log contains want.
func (e *engine) waitLogs(name, want string) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%q in the logs of %s", want, name), func() bool {
		return strings.Contains(e.docker("logs", name), want)
	})
}

// exitCode is the exit status of a failed client run.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v is not an exit status", err)
	}
	return ee.ExitCode()
}

func TestContainerRunOutputAndExitCode(t *testing.T) {
	e := newEngine(t, "")
	if got := e.docker("run", "--rm", "busybox", "echo", "hi"); got != "hi" {
		t.Errorf("docker run --rm busybox echo hi printed %q", got)
	}
	if got := e.docker("run", "--rm", "-e", "FOO=bar", "-w", "/made/for/it", "busybox", "sh", "-c", "echo $FOO; pwd; echo oops >&2"); got != "bar\n/made/for/it" {
		t.Errorf("env and a working directory made on demand: %q", got)
	}
	_, _, err := e.Run("", e.cli, "run", "--rm", "busybox", "sh", "-c", "exit 3")
	if code := exitCode(t, err); code != 3 {
		t.Errorf("docker run of `exit 3` exited %d", code)
	}
	if got := e.dockerIn("piped\n", "run", "--rm", "-i", "busybox", "cat"); got != "piped" {
		t.Errorf("docker run -i with stdin: %q", got)
	}
	// An image that is not here yet: the CLI pulls it on create's 404.
	e.reg.Push(t, "elsewhere:1", testutil.BusyboxImage(t))
	if out := e.docker("run", "--rm", e.reg.Ref("elsewhere:1"), "echo", "pulled"); !strings.HasSuffix(out, "pulled") {
		t.Errorf("docker run of an image to pull: %q", out)
	}
	if got := e.docker("ps", "-aq"); got != "" {
		t.Errorf("--rm containers left behind: %q", got)
	}
}

func TestContainerLifecycle(t *testing.T) {
	e := newEngine(t, "")
	id := e.docker("run", "-d", "--name", "web", "busybox", "sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done")
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q, want the 64-hex id", id)
	}
	if got := e.docker("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(got, "web Up ") {
		t.Errorf("docker ps: %q", got)
	}
	e.waitLogs("web", "started")
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Id}}", "web"); got != "running true /web "+id {
		t.Errorf("inspect of a running container: %q", got)
	}
	e.docker("stop", "web")
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "web"); got != "exited 0" {
		t.Errorf("after stop: %q", got)
	}
	if got := e.docker("ps", "-a", "--format", "{{.Status}}"); !strings.HasPrefix(got, "Exited (0) ") {
		t.Errorf("docker ps -a status of a stopped container: %q", got)
	}
	if got := e.docker("ps", "-q"); got != "" {
		t.Errorf("docker ps lists a stopped container: %q", got)
	}
	// Started again in place: same id, the log goes on.
	e.docker("start", "web")
	e.waitFor("the second start's output", func() bool { return strings.Count(e.docker("logs", "web"), "started") == 2 })
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.Id}}", "web"); got != "running "+id {
		t.Errorf("after start: %q", got)
	}
	started := e.docker("inspect", "--format", "{{.State.StartedAt}}", "web")
	e.docker("restart", "web")
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.StartedAt}}", "web"); got == "running "+started || !strings.HasPrefix(got, "running ") {
		t.Errorf("after restart: %q (started before: %s)", got, started)
	}
	if errOut := e.dockerFails("rm", "web"); !strings.Contains(errOut, "You cannot remove a running container "+id+". Stop the container before attempting removal or force remove") {
		t.Errorf("rm of a running container: %q", errOut)
	}
	e.docker("rm", "-f", "web")
	if got := e.docker("ps", "-aq"); got != "" {
		t.Errorf("docker rm -f left %q", got)
	}
}

func TestContainerKillAndWait(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "sig", "busybox", "sh", "-c", "trap 'echo got USR1' USR1; echo ready; while true; do sleep 0.1; done")
	e.waitLogs("sig", "ready")
	e.docker("kill", "-s", "USR1", "sig")
	e.waitLogs("sig", "got USR1")
	if got := e.docker("inspect", "--format", "{{.State.Status}}", "sig"); got != "running" {
		t.Errorf("a trapped signal stopped the container: %s", got)
	}
	e.docker("kill", "sig")
	if got := e.docker("wait", "sig"); got != "137" {
		t.Errorf("docker wait after kill: %q, want 137", got)
	}
	if errOut := e.dockerFails("kill", "sig"); !strings.Contains(errOut, "is not running") {
		t.Errorf("kill of a stopped container: %q", errOut)
	}
	// The container's own stop signal and timeout.
	e.docker("run", "-d", "--name", "usr1", "--stop-signal", "USR1", "--stop-timeout", "30", "busybox", "sh", "-c", "trap 'echo bye; exit 9' USR1; echo ready; while true; do sleep 0.1; done")
	e.waitLogs("usr1", "ready")
	e.docker("stop", "usr1")
	if got := e.docker("inspect", "--format", "{{.State.ExitCode}} {{.Config.StopSignal}} {{.Config.StopTimeout}}", "usr1"); got != "9 USR1 30" {
		t.Errorf("stop with the container's stop signal: %q", got)
	}
	e.docker("run", "-d", "--name", "eight", "busybox", "sh", "-c", "sleep 0.2; exit 8")
	if got := e.docker("wait", "eight"); got != "8" {
		t.Errorf("docker wait of `exit 8`: %q", got)
	}
}

// cgroupFile reads a file of the container process's cgroup: on cgroup
// v1 the controller's file v1, on v2 the file v2 of the unified tree.
func cgroupFile(t *testing.T, pid, controller, v1, v2 string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var unified string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile("/sys/fs/cgroup/" + controller + parts[2] + "/" + v1)
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	v, err := os.ReadFile("/sys/fs/cgroup" + unified + "/" + v2)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

func TestContainerPauseFreezes(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "counter", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done")
	e.waitLogs("counter", "\n5\n")
	e.docker("pause", "counter")
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "counter"); got != "paused true true" {
		t.Errorf("inspect of a paused container: %q", got)
	}
	if got := e.docker("ps", "--format", "{{.Status}}"); !strings.HasSuffix(got, "(Paused)") {
		t.Errorf("docker ps of a paused container: %q", got)
	}
	pid := e.docker("inspect", "--format", "{{.State.Pid}}", "counter")
	if got := cgroupFile(t, pid, "freezer", "freezer.state", "cgroup.events"); got != "FROZEN" && !strings.Contains(got, "frozen 1") {
		t.Errorf("the container's cgroup is not frozen: %q", got)
	}
	before := e.docker("logs", "counter")
	time.Sleep(300 * time.Millisecond) // the counter would advance ~15 times meanwhile
	if after := e.docker("logs", "counter"); after != before {
		t.Errorf("the counter advanced while paused: %d lines, then %d", strings.Count(before, "\n"), strings.Count(after, "\n"))
	}
	if errOut := e.dockerFails("rm", "counter"); !strings.Contains(errOut, "You cannot remove a paused container") {
		t.Errorf("rm of a paused container: %q", errOut)
	}
	e.docker("unpause", "counter")
	e.waitFor("the counter to go on", func() bool { return len(e.docker("logs", "counter")) > len(before) })
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", "counter"); got != "running false" {
		t.Errorf("after unpause: %q", got)
	}
}

func TestContainerRenameUpdateInspect(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "first", "-m", "64m", "--label", "tier=web", "busybox", "sleep", "1000")
	e.docker("rename", "first", "second")
	if got := e.docker("inspect", "--format", "{{.Name}}", "second"); got != "/second" {
		t.Errorf("inspect after rename: %q", got)
	}
	if errOut := e.dockerFails("inspect", "--type", "container", "first"); !strings.Contains(errOut, "No such container: first") {
		t.Errorf("the old name still answers: %q", errOut)
	}
	if got := e.docker("inspect", "--format", "{{.HostConfig.Memory}} {{.Config.Labels.tier}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}}", "second"); got != "67108864 web busybox no" {
		t.Errorf("inspect: %q", got)
	}
	ip := e.docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "second")
	if net.ParseIP(ip) == nil {
		t.Errorf("NetworkSettings.IPAddress %q is not an address", ip)
	}
	if got := e.docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "second"); got != ip {
		t.Errorf("the network's address %q is not IPAddress %q", got, ip)
	}
	pid := e.docker("inspect", "--format", "{{.State.Pid}}", "second")
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("memory.max %s, want 64m", got)
	}
	e.docker("update", "-m", "128m", "--restart", "on-failure:2", "second")
	if got := e.docker("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "second"); got != "134217728 on-failure:2" {
		t.Errorf("inspect after update: %q", got)
	}
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory.max after update %s, want 128m", got)
	}
	// The new limit holds across a restart.
	e.docker("restart", "-t", "0", "second")
	pid = e.docker("inspect", "--format", "{{.State.Pid}}", "second")
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory.max after restart %s, want 128m", got)
	}
}

func TestContainerListFilters(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "alpha", "--label", "app=a", "busybox", "sleep", "1000")
	e.docker("run", "-d", "--name", "beta", "--label", "app=b", "busybox", "sleep", "1000")
	e.Run("", e.cli, "run", "--name", "gamma", "busybox", "sh", "-c", "exit 2")
	e.docker("create", "--name", "delta", "busybox", "true")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ps"}, "beta alpha"},
		{[]string{"ps", "-a"}, "delta gamma beta alpha"},
		{[]string{"ps", "-a", "--filter", "label=app=a"}, "alpha"},
		{[]string{"ps", "-a", "--filter", "name=alp"}, "alpha"},
		{[]string{"ps", "-a", "--filter", "status=exited"}, "gamma"},
		{[]string{"ps", "-a", "--filter", "status=created"}, "delta"},
		{[]string{"ps", "-a", "--filter", "exited=2"}, "gamma"},
		{[]string{"ps", "-a", "--filter", "ancestor=busybox", "--filter", "label=app"}, "beta alpha"},
		{[]string{"ps", "-a", "--filter", "before=gamma"}, "beta alpha"},
		{[]string{"ps", "-a", "--filter", "since=beta"}, "delta gamma"},
		{[]string{"ps", "-a", "-n", "1"}, "delta"},
	} {
		got := strings.Join(strings.Fields(e.docker(append(tc.args, "--format", "{{.Names}}")...)), " ")
		if got != tc.want {
			t.Errorf("docker %s: %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	if got := e.docker("ps", "-a", "--filter", "name=gamma", "--format", "{{.Status}}"); !strings.HasPrefix(got, "Exited (2) ") {
		t.Errorf("status of gamma: %q", got)
	}
	if got := e.docker("ps", "-a", "--filter", "name=delta", "--format", "{{.Status}}"); got != "Created" {
		t.Errorf("status of delta: %q", got)
	}
	// Sizes: the writable layer, and with the image's.
	e.docker("run", "--name", "writer", "busybox", "dd", "if=/dev/zero", "of=/blob", "bs=1024", "count=1024")
	sizes := strings.Fields(e.docker("inspect", "--size", "--format", "{{.SizeRw}} {{.SizeRootFs}}", "writer"))
	if len(sizes) != 2 {
		t.Fatalf("inspect --size: %q", sizes)
	}
	rw, _ := strconv.Atoi(sizes[0])
	rootfs, _ := strconv.Atoi(sizes[1])
	if rw < 1<<20 || rootfs <= rw {
		t.Errorf("SizeRw %d SizeRootFs %d, want at least the 1 MiB written, and more", rw, rootfs)
	}
	if got := e.docker("ps", "-a", "--size", "--filter", "name=writer", "--format", "{{.Size}}"); !strings.Contains(got, "MB (virtual ") {
		t.Errorf("docker ps --size: %q", got)
	}
	if errOut := e.dockerFails("ps", "--filter", "colour=red"); !strings.Contains(errOut, "invalid filter 'colour'") {
		t.Errorf("unknown filter: %q", errOut)
	}
}

// fetch reads what a TCP server at addr sends.
func fetch(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestContainerPublishedPorts(t *testing.T) {
	e := newEngine(t, "")
	serve := "while true; do echo hello-from-$HOSTNAME | nc -l -p 80; done"
	e.docker("run", "-d", "--name", "srv", "--hostname", "srv", "-p", "127.0.0.1::80", "busybox", "sh", "-c", serve)
	addr := e.docker("port", "srv", "80/tcp")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("docker port: %q", addr)
	}
	e.waitFor("the published port to answer", func() bool {
		got, err := fetch(addr)
		return err == nil && got == "hello-from-srv"
	})
	if got := e.docker("ps", "--format", "{{.Ports}}"); got != addr+"->80/tcp" {
		t.Errorf("docker ps ports: %q", got)
	}
	// -P publishes the exposed ports on free host ports.
	e.docker("run", "-d", "--name", "all", "--hostname", "all", "--expose", "80", "-P", "busybox", "sh", "-c", serve)
	addr = e.docker("port", "all", "80")
	_, port, ok := strings.Cut(addr, ":")
	if n, err := strconv.Atoi(port); !ok || err != nil || n == 0 {
		t.Fatalf("docker port of a -P container: %q", addr)
	}
	e.waitFor("the -P port to answer", func() bool {
		got, err := fetch("127.0.0.1:" + port)
		return err == nil && got == "hello-from-all"
	})
	if errOut := e.dockerFails("run", "-p", "80:99999", "busybox", "true"); !strings.Contains(errOut, "invalid") {
		t.Errorf("bad port spec: %q", errOut)
	}
}

// api calls the Engine API directly, for what the CLI would not send.
func (e *engine) api(method, path, body string) (int, string) {
	e.t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.DockerSocket)
	}}}
	req, err := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestContainerErrors(t *testing.T) {
	e := newEngine(t, "")
	e.docker("create", "--name", "dup", "busybox", "true")
	id := e.docker("inspect", "--format", "{{.Id}}", "dup")
	want := `Conflict. The container name "/dup" is already in use by container "` + id + `". You have to remove (or rename) that container to be able to reuse that name.`
	if errOut := e.dockerFails("run", "--name", "dup", "busybox", "true"); !strings.Contains(errOut, want) {
		t.Errorf("name conflict: %q", errOut)
	}
	for _, args := range [][]string{{"stop", "nope"}, {"start", "nope"}, {"logs", "nope"}, {"rm", "nope"}, {"kill", "nope"}, {"wait", "nope"}} {
		if errOut := e.dockerFails(args...); !strings.Contains(errOut, "No such container: nope") {
			t.Errorf("docker %s: %q", strings.Join(args, " "), errOut)
		}
	}
	if code, body := e.api("POST", "/v1.50/containers/create", "{"); code != http.StatusBadRequest || !strings.Contains(body, "message") {
		t.Errorf("malformed JSON: %d %s", code, body)
	}
	if code, body := e.api("POST", "/v1.50/containers/create?name=badport", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"eighty"}]}}}`); code != http.StatusBadRequest || !strings.Contains(body, "invalid port specification") {
		t.Errorf("bad host port: %d %s", code, body)
	}
	if code, body := e.api("POST", "/v1.50/containers/create", `{"Image":"no-such-image"}`); code != http.StatusNotFound || !strings.Contains(body, "No such image: no-such-image") {
		t.Errorf("unknown image: %d %s", code, body)
	}
	if code, _ := e.api("POST", "/v1.50/containers/dup/stop", ""); code != http.StatusNotModified {
		t.Errorf("stop of a container that does not run: %d, want 304", code)
	}
	if got := e.docker("ps", "-a", "--format", "{{.Names}}"); got != "dup" {
		t.Errorf("failed creates left containers: %q", got)
	}
}

// openPTY opens a pseudo-terminal pair: the master, and the slave for
// the client's stdio.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ttyClient runs the docker CLI on a terminal; out collects what it
// prints.
type ttyClient struct {
	cmd    *exec.Cmd
	master *os.File
	out    chan string
}

func (e *engine) dockerTTY(args ...string) *ttyClient {
	e.t.Helper()
	master, slave := openPTY(e.t)
	cmd := exec.Command(e.cli, args...)
	cmd.Env = append(os.Environ(), e.Env()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	slave.Close()
	tc := &ttyClient{cmd: cmd, master: master, out: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				tc.out <- string(buf[:n])
			}
			if err != nil {
				close(tc.out)
				return
			}
		}
	}()
	return tc
}

// expect reads the terminal until want appears.
func (tc *ttyClient) expect(t *testing.T, want string) {
	t.Helper()
	var seen strings.Builder
	timeout := time.After(60 * time.Second)
	for !strings.Contains(seen.String(), want) {
		select {
		case s, ok := <-tc.out:
			if !ok {
				t.Fatalf("the terminal closed before %q; it showed %q", want, seen.String())
			}
			seen.WriteString(s)
		case <-timeout:
			t.Fatalf("timed out waiting for %q on the terminal; it showed %q", want, seen.String())
		}
	}
}

func TestContainerInteractiveTTY(t *testing.T) {
	e := newEngine(t, "")
	tc := e.dockerTTY("run", "-it", "--name", "shell", "busybox", "sh")
	tc.expect(t, "# ")
	tc.master.WriteString("echo $((6*7)); tty\r")
	tc.expect(t, "42")
	tc.expect(t, "/dev/pts/")
	tc.master.WriteString("exit 5\r")
	err := tc.cmd.Wait()
	if code := exitCode(t, err); code != 5 {
		t.Errorf("docker run -it exited %d, want the shell's 5", code)
	}

	// ^P^Q detaches and leaves the container running; attach comes back.
	tc = e.dockerTTY("run", "-it", "--name", "detach", "busybox", "sh")
	tc.expect(t, "# ")
	tc.master.Write([]byte{16, 17})
	if err := tc.cmd.Wait(); err != nil {
		t.Errorf("docker run -it after ^P^Q: %v", err)
	}
	if got := e.docker("inspect", "--format", "{{.State.Status}}", "detach"); got != "running" {
		t.Errorf("after detaching: %s", got)
	}
	tc = e.dockerTTY("attach", "detach")
	tc.master.WriteString("echo back-$((1+1))\r")
	tc.expect(t, "back-2")
	tc.master.WriteString("exit\r")
	if err := tc.cmd.Wait(); err != nil {
		t.Errorf("docker attach then exit: %v", err)
	}
	if got := e.docker("wait", "detach"); got != "0" {
		t.Errorf("exit code after attach: %s", got)
	}
}

func TestContainerLogsAndStartAttach(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "--name", "lines", "busybox", "sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; done")
	stdout, stderr, err := e.Run("", e.cli, "logs", "lines")
	if err != nil || stdout != "out1\nout2\nout3\n" || stderr != "err1\nerr2\nerr3\n" {
		t.Errorf("docker logs: stdout %q stderr %q (%v), want the streams apart", stdout, stderr, err)
	}
	e.docker("run", "--name", "count", "busybox", "seq", "5")
	if got := e.docker("logs", "--tail", "2", "count"); got != "4\n5" {
		t.Errorf("docker logs --tail 2: %q", got)
	}
	ts := e.docker("logs", "-t", "--tail", "1", "count")
	stamp, line, _ := strings.Cut(ts, " ")
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil || line != "5" {
		t.Errorf("docker logs -t: %q", ts)
	}
	if got := e.docker("logs", "--since", "2100-01-01T00:00:00Z", "lines"); got != "" {
		t.Errorf("docker logs --since the future: %q", got)
	}
	// start -a of an exited container runs it again with the client
	// attached from the first byte; the log keeps both runs.
	if got := e.docker("start", "-a", "lines"); !strings.Contains(got, "out1") || !strings.Contains(got, "out3") {
		t.Errorf("docker start -a: %q", got)
	}
	if got := strings.Count(e.docker("logs", "lines"), "out1"); got != 2 {
		t.Errorf("the log has %d runs, want 2", got)
	}
	// logs -f follows until the container exits.
	e.docker("run", "-d", "--name", "slow", "busybox", "sh", "-c", "echo first; exec sleep 1000")
	done := make(chan string, 1)
	go func() { out, _, _ := e.Run("", e.cli, "logs", "-f", "slow"); done <- out }()
	e.waitLogs("slow", "first")
	e.docker("kill", "slow")
	if got := <-done; got != "first\n" {
		t.Errorf("docker logs -f: %q", got)
	}
	// A TTY's output is one stream.
	e.docker("run", "-t", "--name", "tty", "busybox", "sh", "-c", "echo to-out; echo to-err >&2")
	if got := e.docker("logs", "tty"); got != "to-out\r\nto-err\r" {
		t.Errorf("docker logs of a TTY container: %q", got)
	}
}

func TestContainerVolumesFromAndLinks(t *testing.T) {
	e := newEngine(t, "")
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/f", []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.docker("run", "--name", "holder", "-v", "shared:/shared", "-v", dir+":/host:ro", "busybox", "sh", "-c", "echo from-volume > /shared/v")
	if got := e.docker("run", "--rm", "--volumes-from", "holder", "busybox", "cat", "/shared/v", "/host/f"); got != "from-volume\nfrom-host" {
		t.Errorf("--volumes-from: %q", got)
	}
	if errOut := e.dockerFails("run", "--rm", "--volumes-from", "holder", "busybox", "touch", "/host/x"); !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("a read-only bind stays read-only through --volumes-from: %q", errOut)
	}
	e.docker("run", "-d", "--name", "db", "busybox", "sleep", "1000")
	ip := e.docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "db")
	if got := e.docker("run", "--rm", "--link", "db:database", "busybox", "grep", "database", "/etc/hosts"); !strings.HasPrefix(got, ip+"\t") {
		t.Errorf("--link hosts entry %q, want db's address %s", got, ip)
	}
}

func TestContainerSurvivesBerthdRestart(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "keeper", "busybox", "sh", "-c", "echo before; exec sleep 1000")
	e.docker("run", "-d", "--name", "quitter", "busybox", "sleep", "1000")
	e.docker("run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "1000")
	pids := map[string]int{}
	for _, name := range []string{"keeper", "quitter", "gone"} {
		n, err := strconv.Atoi(e.docker("inspect", "--format", "{{.State.Pid}}", name))
		if err != nil || n <= 0 {
			t.Fatalf("pid of %s: %v", name, err)
		}
		pids[name] = n
	}
	e.Kill()
	// While berthd is away, two containers die.
	syscall.Kill(pids["quitter"], syscall.SIGKILL)
	syscall.Kill(pids["gone"], syscall.SIGKILL)
	e.Start()
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.Pid}}", "keeper"); got != "running "+strconv.Itoa(pids["keeper"]) {
		t.Errorf("after a berthd crash: %q, want running with pid %d", got, pids["keeper"])
	}
	if got := e.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "quitter"); got != "exited 137" {
		t.Errorf("a container that died while berthd was away: %q", got)
	}
	e.waitFor("the --rm container that exited meanwhile to be removed", func() bool {
		_, _, err := e.Run("", e.cli, "inspect", "--type", "container", "gone")
		return err != nil
	})
	e.docker("stop", "-t", "0", "keeper")
	e.docker("start", "keeper")
	e.waitFor("the restarted container's output", func() bool { return strings.Count(e.docker("logs", "keeper"), "before") == 2 })
}

func TestContainerSecurityAndLimits(t *testing.T) {
	e := newEngine(t, "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"read-only root", []string{"--read-only", "busybox", "sh", "-c", "touch /x 2>&1 || true"}, "Read-only file system"},
		{"tmpfs on a read-only root", []string{"--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c", "touch /scratch/x && echo wrote"}, "wrote"},
		{"ulimit", []string{"--ulimit", "nofile=123:456", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"}, "123\n456"},
		{"user", []string{"-u", "1000:1001", "busybox", "id"}, "uid=1000(berth) gid=1001"},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"}, "NoNewPrivs:\t1"},
		{"cap-drop", []string{"--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"}, "CapEff:\t0000000000000000"},
		{"privileged", []string{"--privileged", "busybox", "grep", "CapEff", "/proc/self/status"}, "CapEff:\t" + hostCaps(t)},
		{"hostname", []string{"--hostname", "box", "busybox", "hostname"}, "box"},
		{"init", []string{"--init", "busybox", "cat", "/proc/1/cmdline"}, "/sbin/docker-init"},
		{"network none", []string{"--network", "none", "busybox", "ls", "/sys/class/net"}, "lo"},
		{"host network", []string{"--network", "host", "busybox", "hostname"}, hostname(t)},
		{"dns", []string{"--dns", "192.0.2.53", "--dns-search", "example.test", "busybox", "cat", "/etc/resolv.conf"}, "nameserver 192.0.2.53"},
		{"add-host", []string{"--add-host", "db.local:192.0.2.7", "busybox", "grep", "db.local", "/etc/hosts"}, "192.0.2.7\tdb.local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := e.Run("", e.cli, append([]string{"run", "--rm"}, tc.args...)...)
			if err != nil || !strings.Contains(out, tc.want) {
				t.Errorf("docker run %s: %q %q %v, want %q", strings.Join(tc.args, " "), out, errOut, err, tc.want)
			}
		})
	}
	e.docker("run", "-d", "--name", "limited", "--pids-limit", "50", "--cpus", "1.5", "busybox", "sleep", "1000")
	pid := e.docker("inspect", "--format", "{{.State.Pid}}", "limited")
	if got := cgroupFile(t, pid, "pids", "pids.max", "pids.max"); got != "50" {
		t.Errorf("pids.max %s, want 50", got)
	}
	if got := e.docker("inspect", "--format", "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}", "limited"); got != "1500000000 50" {
		t.Errorf("inspect of the limits: %q", got)
	}
	// Another container's network namespace.
	ip := e.docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "limited")
	if got := e.docker("run", "--rm", "--network", "container:limited", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(got, ip+"/") {
		t.Errorf("--network container:limited sees %q, want its address %s", got, ip)
	}
	if got := e.docker("inspect", "--format", "{{.Id}}", "limited"); got == "" {
		t.Fatal("the joined container went with the joiner")
	}
}

// hostCaps is the host's capability bounding set, all a privileged
// container gets.
func hostCaps(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
			return v
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestContainerPrune(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "-d", "--name", "running", "busybox", "sleep", "1000")
	e.docker("run", "--name", "done1", "--label", "keep=no", "busybox", "true")
	e.docker("run", "--name", "done2", "--label", "keep=yes", "busybox", "true")
	out := e.docker("container", "prune", "-f", "--filter", "label=keep=no")
	if id := e.docker("ps", "-aq", "--no-trunc", "--filter", "name=done1"); id != "" || !strings.Contains(out, "Deleted Containers:") {
		t.Errorf("prune with a label filter: %q; done1 left: %q", out, id)
	}
	e.docker("container", "prune", "-f")
	if got := strings.Join(strings.Fields(e.docker("ps", "-a", "--format", "{{.Names}}")), " "); got != "running" {
		t.Errorf("after prune: %q, want only the running container", got)
	}
}

func TestContainerCRIContainersShown(t *testing.T) {
	e := newEngine(t, "")
	conn, err := grpc.NewClient("unix://"+e.CRISocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()
	pod := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "shop", Uid: "uid-1", Attempt: 0},
		Hostname:     "web",
		LogDirectory: t.TempDir(),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: pod, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app", Attempt: 2},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Command:  []string{"sh", "-c", "echo from-kubernetes; exec sleep 1000"},
		LogPath:  "app.log",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	name := "k8s_app_web_shop_uid-1_2"
	if got := e.docker("ps", "--format", "{{.ID}} {{.Names}}"); got != ctr.ContainerId[:12]+" "+name {
		t.Errorf("docker ps shows the CRI's container as %q, want dockershim's name %s", got, name)
	}
	e.waitLogs(name, "from-kubernetes")
	if got := e.docker("inspect", "--format", "{{.Name}} {{.State.Status}} {{.Id}}", name); got != "/"+name+" running "+ctr.ContainerId {
		t.Errorf("docker inspect of the CRI's container: %q", got)
	}
	// And the CRI still does not see docker's.
	e.docker("run", "-d", "--name", "dockers", "busybox", "sleep", "1000")
	list, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 1 || list.Containers[0].Id != ctr.ContainerId {
		t.Errorf("the CRI lists %v (%v), want only its own container", list.GetContainers(), err)
	}
}
