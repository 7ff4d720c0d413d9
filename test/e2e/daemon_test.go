// Package e2e drives a live berthd through its real CRI socket, with
// images served by a registry on loopback inside the test. Every test
// needs root and the binaries of `make build` (BERTH_BIN).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// daemon is one berthd process with its own root, state and socket.
type daemon struct {
	t      *testing.T
	Root   string
	State  string
	Socket string
	Config string
	// Bin is the berthd to run; empty: BERTH_BIN's.
	Bin    string
	cmd    *exec.Cmd
	pid    int
	exited chan error
	logs   *testutil.SyncBuffer
	conn   *grpc.ClientConn
	RT     runtimeapi.RuntimeServiceClient
	Img    runtimeapi.ImageServiceClient
}

func berthBin(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("BERTH_BIN")
	if dir == "" {
		t.Skip("BERTH_BIN is not set: run through `make test-e2e`")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v (run `make build`)", p, err)
	}
	return p
}

// newDaemon starts berthd with a private root and state and extra TOML
// config lines, and stops it when the test ends.
func newDaemon(t *testing.T, extraConfig string) *daemon {
	t.Helper()
	return newDaemonBin(t, extraConfig, "")
}

// newDaemonBin is newDaemon running the berthd at bin (empty: BERTH_BIN's).
func newDaemonBin(t *testing.T, extraConfig, bin string) *daemon {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	// Searchable by anyone, as /var/lib and /run are: containers in a
	// user namespace reach their root file systems as nobody.
	os.Chmod(dir, 0o711)
	os.Chmod(filepath.Dir(dir), 0o711)
	d := &daemon{
		t:      t,
		Root:   filepath.Join(dir, "root"),
		State:  filepath.Join(dir, "state"),
		Socket: filepath.Join(dir, "state", "berth.sock"),
		Config: filepath.Join(dir, "config.toml"),
		Bin:    bin,
	}
	cfg := fmt.Sprintf("root = %q\nstate = %q\nlog_level = \"debug\"\n%s\n", d.Root, d.State, extraConfig)
	if !strings.Contains(extraConfig, "[cni]") {
		// Never the host's /etc/cni/net.d: berthd writes a default
		// network there when it is empty.
		cfg += fmt.Sprintf("[cni]\nconf_dir = %q\n", filepath.Join(dir, "cni"))
	}
	if err := os.WriteFile(d.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removeAllPods()
		}
		d.Stop()
		if t.Failed() {
			t.Logf("berthd log:\n%s", tail(d.logs.String(), 60))
		}
		// The namespace pin directories are mount points of their own.
		unix.Unmount(filepath.Join(d.State, "netns"), unix.MNT_DETACH)
		unix.Unmount(filepath.Join(d.State, "userns"), unix.MNT_DETACH)
	})
	return d
}

// Start runs berthd and waits until its socket answers Version.
func (d *daemon) Start() {
	t := d.t
	t.Helper()
	if d.logs == nil {
		d.logs = &testutil.SyncBuffer{}
	}
	bin := d.Bin
	if bin == "" {
		bin = berthBin(t, "berthd")
	}
	d.cmd = exec.Command(bin, "--config", d.Config)
	d.cmd.Stdout = d.logs
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func(cmd *exec.Cmd) { exited <- cmd.Wait() }(d.cmd)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("berthd exited at start: %v\n%s", err, d.logs.String())
		default:
		}
		if _, err := os.Stat(d.Socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("berthd did not create %s\n%s", d.Socket, d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	d.RT = runtimeapi.NewRuntimeServiceClient(conn)
	d.Img = runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.RT.Version(ctx, &runtimeapi.VersionRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("Version: %v\n%s", err, d.logs.String())
	}
	d.pid = d.cmd.Process.Pid
	d.exited = exited
}

// removeAllPods stops and removes every pod through the CRI, so a test
// (even a failed one) leaves no processes, mounts or addresses behind.
func (d *daemon) removeAllPods() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := d.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		d.t.Errorf("cleanup: ListPodSandbox: %v", err)
		return
	}
	for _, p := range pods.Items {
		if _, err := d.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			d.t.Errorf("cleanup: StopPodSandbox: %v", err)
		}
		if _, err := d.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			d.t.Errorf("cleanup: RemovePodSandbox: %v", err)
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (d *daemon) Stop() {
	if d.cmd == nil {
		return
	}
	if d.conn != nil {
		d.conn.Close()
	}
	syscall.Kill(d.pid, syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			d.t.Errorf("berthd exited uncleanly on SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		d.t.Errorf("berthd did not stop within 20s of SIGTERM")
		syscall.Kill(d.pid, syscall.SIGKILL)
		<-d.exited
	}
	d.cmd = nil
}

// Kill kills berthd with SIGKILL, as a crash would.
func (d *daemon) Kill() {
	if d.conn != nil {
		d.conn.Close()
	}
	syscall.Kill(d.pid, syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

func (d *daemon) Logs() string { return d.logs.String() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
