package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// netSeq gives each daemon of a test run its own bridge and subnet, so
// daemons never hand out each other's addresses.
var netSeq atomic.Int32

func init() { netSeq.Store(int32(os.Getpid() % 100)) }

// testNetwork is a bridge name and /24 subnet of the test's own. The
// bridge is deleted after the test.
func testNetwork(t *testing.T) (bridge, subnet string) {
	n := netSeq.Add(1) % 250
	bridge, subnet = fmt.Sprintf("bt%d", n), fmt.Sprintf("10.211.%d.0/24", n)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	return bridge, subnet
}

// cniConfig is the [cni] section of a test daemon: a private config
// directory and a testNetwork for berthd's default network.
func cniConfig(t *testing.T) (string, *net.IPNet) {
	bridge, subnet := testNetwork(t)
	_, ipnet, _ := net.ParseCIDR(subnet)
	return fmt.Sprintf("[cni]\nconf_dir = %q\ndefault_bridge = %q\ndefault_subnet = %q\n", t.TempDir(), bridge, subnet), ipnet
}

// podDaemon is a daemon with a private pod network and the busybox image
// pulled; it returns the image name.
func podDaemon(t *testing.T, extra string, opts ...testutil.ImageOption) (*daemon, string, *net.IPNet) {
	t.Helper()
	reg := testutil.NewRegistry(t)
	reg.Push(t, "busybox:latest", testutil.BusyboxImage(t, opts...))
	cniCfg, subnet := cniConfig(t)
	d := newDaemon(t, cniCfg+extra)
	mustPull(t, d, reg.Ref("busybox:latest"))
	return d, reg.Ref("busybox:latest"), subnet
}

// volumeDaemon is a daemon with a private pod network, the busybox image
// and a second image of several layers (testutil.WhiteoutImage) pulled,
// for image volumes. It returns busybox's name and the second image's
// name and id.
func volumeDaemon(t *testing.T) (d *daemon, img, volRef, volID string) {
	t.Helper()
	d, img, _ = podDaemon(t, "")
	reg := testutil.NewRegistry(t)
	reg.Push(t, "data:1", testutil.WhiteoutImage(t))
	volRef = reg.Ref("data:1")
	return d, img, volRef, mustPull(t, d, volRef)
}

func podConfig(t *testing.T, name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid", Attempt: 1},
		Hostname:     name,
		LogDirectory: t.TempDir(),
		Labels:       map[string]string{"app": name, "berth.test/kind": "pod"},
		Annotations:  map[string]string{"note": "a value with spaces & symbols: ✓"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func runPod(t *testing.T, d *daemon, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.PodSandboxId
}

func containerConfig(name, image string, args ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: name, Attempt: 0},
		Image:       &runtimeapi.ImageSpec{Image: image},
		Command:     []string{"sh", "-c"},
		Args:        args,
		LogPath:     name + ".log",
		Labels:      map[string]string{"ctr": name},
		Annotations: map[string]string{"a": "b"},
	}
}

func createContainer(t *testing.T, d *daemon, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	resp, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
	}
	return resp.ContainerId
}

func startContainer(t *testing.T, d *daemon, id string) {
	t.Helper()
	if _, err := d.RT.StartContainer(ctxT(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
}

// runContainer creates and starts a container, as crictl run does.
func runContainer(t *testing.T, d *daemon, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id := createContainer(t, d, podID, pod, cfg)
	startContainer(t, d, id)
	return id
}

func containerStatus(t *testing.T, d *daemon, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := d.RT.ContainerStatus(ctxT(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	return resp.Status
}

// waitState polls ContainerStatus until the container is in state.
func waitState(t *testing.T, d *daemon, id string, state runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := containerStatus(t, d, id)
		if st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is %v, want %v", id[:12], st.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the container's CRI log contains want.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s lacks %q:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logPath(pod *runtimeapi.PodSandboxConfig, ctr *runtimeapi.ContainerConfig) string {
	return filepath.Join(pod.LogDirectory, ctr.LogPath)
}

// cleanupCgroupParent removes the pod-level cgroups a test's cgroup_parent
// made (runc removes only the containers' own; the kubelet owns parents)
// when the test ends.
func cleanupCgroupParent(t *testing.T, parent string) {
	t.Cleanup(func() { testutil.RemoveCgroupTree(parent) })
}
