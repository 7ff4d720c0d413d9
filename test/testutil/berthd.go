package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Berthd is one berthd process with its own root, state, sockets and
// networks (its pod network and docker's default bridge on subnets of
// their own), for tests that drive it through the Engine API socket.
type Berthd struct {
	t      testing.TB
	Dir    string
	Root   string
	State  string
	Config string
	// CRISocket and DockerSocket are the doors' unix sockets.
	CRISocket, DockerSocket string
	// Bin is the berthd binary.
	Bin string
	// Slot is the daemon's reserved number (1..250), free for the test
	// to number further bridges or subnets (10.214.<Slot>.0/24 and up
	// are no other test's).
	Slot   int
	cmd    *exec.Cmd
	exited chan error
	logs   *SyncBuffer
}

// netSlot reserves a number 1..250 for a daemon's bridges and subnets
// that no other test process on this machine holds (a lock file under
// /tmp, held until the test ends), so that test processes running at once
// never share a bridge or hand out each other's addresses.
func netSlot(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "berth-test-nets")
	os.MkdirAll(dir, 0o700)
	start := int(slotSeq.Add(1))
	for i := range 250 {
		n := (start+i)%250 + 1
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			t.Cleanup(func() { f.Close() })
			return n
		}
		f.Close()
	}
	t.Fatal("no free test network slot")
	return 0
}

var slotSeq atomic.Int32

func init() { slotSeq.Store(int32(os.Getpid() % 250)) }

// BerthBin is the path of a binary of `make build` (BERTH_BIN); the test
// is skipped when BERTH_BIN is unset.
func BerthBin(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("BERTH_BIN")
	if dir == "" {
		t.Skip("BERTH_BIN is not set: run through `make test-compat`")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v (run `make build`)", p, err)
	}
	return p
}

// StartBerthd starts berthd with a private root, state, CNI config
// directory, pod network and docker bridge, plus the extra TOML lines,
// and stops it (SIGTERM) when the test ends.
func StartBerthd(t testing.TB, extraConfig string) *Berthd {
	t.Helper()
	RequiresRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o711)
	os.Chmod(filepath.Dir(dir), 0o711)
	n := netSlot(t)
	d := &Berthd{
		t: t, Dir: dir, Slot: n,
		Root:         filepath.Join(dir, "root"),
		State:        filepath.Join(dir, "state"),
		Config:       filepath.Join(dir, "config.toml"),
		CRISocket:    filepath.Join(dir, "state", "berth.sock"),
		DockerSocket: filepath.Join(dir, "state", "docker.sock"),
		Bin:          BerthBin(t, "berthd"),
		logs:         &SyncBuffer{},
	}
	// Bridges bcp<n> and bcd<n>: 10.212.<n>.0/24 for pods,
	// 10.213.<n>.0/24 for docker's default bridge.
	podBridge, dockerBridge := fmt.Sprintf("bcp%d", n), fmt.Sprintf("bcd%d", n)
	cfg := fmt.Sprintf(`root = %q
state = %q
log_level = "debug"
[cni]
conf_dir = %q
default_bridge = %q
default_subnet = "10.212.%d.0/24"
[docker]
bridge = %q
subnet = "10.213.%d.0/24"
%s
`, d.Root, d.State, filepath.Join(dir, "cni"), podBridge, n, dockerBridge, n, extraConfig)
	if err := os.WriteFile(d.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("berthd log (last lines):\n%s", lastLines(d.logs.String(), 80))
		}
		unix.Unmount(filepath.Join(d.State, "netns"), unix.MNT_DETACH)
		unix.Unmount(filepath.Join(d.State, "userns"), unix.MNT_DETACH)
		exec.Command("ip", "link", "del", podBridge).Run()
		exec.Command("ip", "link", "del", dockerBridge).Run()
	})
	return d
}

// Start runs berthd and waits until the Engine API answers /_ping.
func (d *Berthd) Start() {
	t := d.t
	t.Helper()
	d.cmd = exec.Command(d.Bin, "--config", d.Config)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func(cmd *exec.Cmd) { exited <- cmd.Wait() }(d.cmd)
	d.exited = exited
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			d.cmd = nil
			t.Fatalf("berthd exited at start: %v\n%s", err, d.logs.String())
		default:
		}
		if c, err := net.Dial("unix", d.DockerSocket); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("berthd did not serve %s\n%s", d.DockerSocket, d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (d *Berthd) Stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			d.t.Errorf("berthd exited uncleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		d.t.Errorf("berthd did not stop within 30s of SIGTERM")
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// Kill kills berthd with SIGKILL, as a crash would.
func (d *Berthd) Kill() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
}

// Logs is everything berthd printed so far.
func (d *Berthd) Logs() string { return d.logs.String() }

// DockerHost is the DOCKER_HOST value for the Engine API socket.
func (d *Berthd) DockerHost() string { return "unix://" + d.DockerSocket }

// Env is the environment for a docker client of this daemon: DOCKER_HOST,
// a private DOCKER_CONFIG, and no BuildKit (berth serves the classic
// builder).
func (d *Berthd) Env() []string {
	cfgDir := filepath.Join(d.Dir, "docker-config")
	os.MkdirAll(cfgDir, 0o700)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return append(env, "DOCKER_HOST="+d.DockerHost(), "DOCKER_CONFIG="+cfgDir, "DOCKER_BUILDKIT=0")
}

// DockerCLI is the docker CLI the tests drive: DOCKER_CLI, else
// /usr/local/bin/docker, else docker in PATH; the test is skipped when
// none exists.
func DockerCLI(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("DOCKER_CLI"), "/usr/local/bin/docker"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI")
	}
	return p
}

// Run runs a client (the docker CLI, docker-compose, python3) against d
// with stdin, returning stdout, stderr and the error of exec.Cmd.Run.
func (d *Berthd) Run(stdin string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(name, args...)
	cmd.Env = d.Env()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
