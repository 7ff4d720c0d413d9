package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// TestUpgradeFromSchema1 runs a pod under the previous berthd, whose
// records kept the CRI request protobuf (schema 1; its binaries in
// BERTH_OLD_BIN), kills it and starts this one on the same root and
// state: the records are migrated at start, recovery adopts the running
// container, and status reports what the CRI config asked for.
func TestUpgradeFromSchema1(t *testing.T) {
	old := os.Getenv("BERTH_OLD_BIN")
	if old == "" {
		t.Skip("BERTH_OLD_BIN is not set: the `make build` binaries of a schema-1 berth")
	}
	reg := testutil.NewRegistry(t)
	reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	cniCfg, _ := cniConfig(t)
	d := newDaemonBin(t, cniCfg, filepath.Join(old, "berthd"))
	img := reg.Ref("busybox:latest")
	mustPull(t, d, img)

	pod := podConfig(t, "upgrade")
	pod.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"svc.test"}}
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}
	podID := runPod(t, d, pod)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "hello"), []byte("from the host\n"), 0o644)
	cfg := containerConfig("runner", img, "echo up; sleep 1000")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: data, Readonly: true}}
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}
	a := runContainer(t, d, podID, pod, cfg)
	b := createContainer(t, d, podID, pod, containerConfig("later", img, "echo later; sleep 1000"))
	waitLog(t, logPath(pod, cfg), "up\n")

	d.Kill()
	d.Bin = ""
	d.Start()

	st := containerStatus(t, d, a)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("running container after the upgrade: %v", st.State)
	}
	if len(st.Mounts) != 1 || st.Mounts[0].HostPath != data || !st.Mounts[0].Readonly {
		t.Errorf("mounts after the upgrade = %v", st.Mounts)
	}
	if st.GetResources().GetLinux().GetMemoryLimitInBytes() != 64<<20 {
		t.Errorf("resources after the upgrade = %v", st.GetResources())
	}
	if st.LogPath != logPath(pod, cfg) {
		t.Errorf("log path after the upgrade = %q", st.LogPath)
	}
	resp, err := d.RT.ContainerStatus(ctxT(t), &runtimeapi.ContainerStatusRequest{ContainerId: a, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Origin string `json:"origin"`
		Config any    `json:"config"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || info.Origin != "cri" || info.Config != nil {
		t.Errorf("migrated record = %s (%v)", resp.Info["info"], err)
	}
	ps, err := d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || ps.Status.GetLinux().GetNamespaces().GetOptions().GetPid() != runtimeapi.NamespaceMode_POD {
		t.Errorf("pod after the upgrade: %v", ps.Status)
	}
	// The adopted container is served as before.
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: a, Cmd: []string{"cat", "/data/hello"}})
	if err != nil || string(res.Stdout) != "from the host\n" {
		t.Errorf("exec after the upgrade: %v %v", res, err)
	}
	startContainer(t, d, b)
	waitLog(t, logPath(pod, containerConfig("later", img)), "later\n")
	// The migrated names are held.
	if _, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: pod}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("the same pod again after the upgrade = %v, want AlreadyExists", err)
	}
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: a, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	d.removeAllPods()
	if resp, err := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{}); err != nil || len(resp.Containers) != 0 {
		t.Errorf("containers left after removing the pod: %v %v", resp, err)
	}
}
