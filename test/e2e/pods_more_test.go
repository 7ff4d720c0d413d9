package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestHostNetworkPod: no netns, no CNI; the container sees the host's
// interfaces and hostname.
func TestHostNetworkPod(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "hostnet")
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	podID := runPod(t, d, pod)
	st, err := d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.Network.Ip != "" || st.Status.Linux.Namespaces.Options.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host-network pod status = %v", st.Status)
	}
	if ns, _ := os.ReadDir(filepath.Join(d.State, "netns")); len(ns) != 0 {
		t.Errorf("a host-network pod got a netns: %v", ns)
	}
	cid := runContainer(t, d, podID, pod, containerConfig("c", img, "sleep 1000"))
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "readlink /proc/self/ns/net; hostname"}})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if want := hostNet + "\n" + host + "\n"; string(res.Stdout) != want {
		t.Errorf("container sees %q, want %q", res.Stdout, want)
	}
}

// TestCgroupsAndMounts: cgroup_parent is honoured and each container's
// cgroup is named after its id; bind mounts, read-only ones too, and a
// host path that does not exist yet.
func TestCgroupsAndMounts(t *testing.T) {
	parent := "/berthtest/pod" + strings.ReplaceAll(t.Name(), "/", "-")
	cleanupCgroupParent(t, parent) // registered first: runs after the daemon's cleanup
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "cg")
	pod.Linux.CgroupParent = parent
	podID := runPod(t, d, pod)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "file"), []byte("from the host\n"), 0o644)
	created := filepath.Join(t.TempDir(), "made", "by", "berth")
	// The kubelet mounts its own /etc/hosts into the containers of a pod
	// with an IP; it takes the place of the pod's.
	hosts := filepath.Join(t.TempDir(), "etc-hosts")
	os.WriteFile(hosts, []byte("10.9.8.7 from-the-kubelet\n"), 0o644)
	c := containerConfig("c", img, "sleep 1000")
	c.Mounts = []*runtimeapi.Mount{
		{HostPath: hostDir, ContainerPath: "/mnt/ro", Readonly: true},
		{HostPath: hostDir, ContainerPath: "/mnt/rw"},
		{HostPath: created, ContainerPath: "/mnt/new"},
		{HostPath: hosts, ContainerPath: "/etc/hosts"},
	}
	cid := runContainer(t, d, podID, pod, c)
	for _, ctrl := range []string{"memory", "pids", "cpu"} {
		dir := filepath.Join("/sys/fs/cgroup", ctrl, parent, cid)
		if _, err := os.Stat(dir); err != nil {
			if _, err2 := os.Stat(filepath.Join("/sys/fs/cgroup", parent, cid)); err2 != nil {
				t.Errorf("no cgroup %s (nor on the unified hierarchy): %v", dir, err)
			}
		}
	}
	exec := func(cmd string) (string, int32) {
		res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c", cmd}})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Stdout) + string(res.Stderr), res.ExitCode
	}
	if out, _ := exec("cat /mnt/ro/file"); out != "from the host\n" {
		t.Errorf("read through the mount: %q", out)
	}
	if out, _ := exec("cat /etc/hosts"); out != "10.9.8.7 from-the-kubelet\n" {
		t.Errorf("/etc/hosts is not the request's: %q", out)
	}
	if _, code := exec("echo x > /mnt/ro/other"); code == 0 {
		t.Error("wrote to a read-only mount")
	}
	if _, code := exec("echo x > /mnt/rw/other"); code != 0 {
		t.Error("could not write to a read-write mount")
	}
	if b, _ := os.ReadFile(filepath.Join(hostDir, "other")); string(b) != "x\n" {
		t.Errorf("write through the mount reached the host as %q", b)
	}
	if st, err := os.Stat(created); err != nil || !st.IsDir() {
		t.Errorf("missing host path not created: %v", err)
	}
	// The container's writable layer counts in ImageFsInfo's container fs.
	before := fsInfo(t, d).ctr.UsedBytes.Value
	exec("dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null")
	if after := fsInfo(t, d).ctr.UsedBytes.Value; after < before+8<<20 {
		t.Errorf("container fs grew %d → %d after writing 8 MiB", before, after)
	}
}

// TestCrunHandler: the crun runtime handler runs pods where the host
// allows it; on a hybrid cgroup host (v1 plus a cgroup2 mount with a
// controller) crun 1.8 refuses, and the pod fails with crun's own message
// and leaves nothing behind.
func TestCrunHandler(t *testing.T) {
	if _, err := exec.LookPath("crun"); err != nil {
		t.Skip("crun is not installed")
	}
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "crun")
	resp, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: pod, RuntimeHandler: "crun"})
	if err != nil {
		if !strings.Contains(err.Error(), "crun create:") {
			t.Errorf("crun failure does not carry crun's message: %v", err)
		}
		t.Logf("crun refused this host: %v", err)
		assertNothingLeft(t, d)
		return
	}
	c := containerConfig("c", img, "echo via crun")
	runContainer(t, d, resp.PodSandboxId, pod, c)
	waitLog(t, logPath(pod, c), "via crun")
}

// TestPodHostname: without a hostname a pod gets the node's (as in
// containerd and CRI-O), whatever its name's length; a hostname over 64
// bytes is refused clearly.
func TestPodHostname(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "a-pod-name-that-is-much-longer-than-the-sixty-four-bytes-linux-allows-for-hostnames")
	pod.Hostname = ""
	podID := runPod(t, d, pod)
	cid := runContainer(t, d, podID, pod, containerConfig("c", img, "sleep 1000"))
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"hostname"}})
	host, _ := os.Hostname()
	if err != nil || strings.TrimSpace(string(res.Stdout)) != host {
		t.Errorf("hostname = %q %v, want the node's %q", res.GetStdout(), err, host)
	}
	long := podConfig(t, "long")
	long.Hostname = strings.Repeat("h", 65)
	if _, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: long}); err == nil || !strings.Contains(err.Error(), "64 bytes") {
		t.Errorf("a 65-byte hostname = %v", err)
	}
}

// TestRecursiveReadOnlyMounts: with recursive_read_only, a mount below the
// host path is read-only in the container too; a plain read-only mount
// leaves it writable; recursive read-only without read-only or with
// propagation is refused; Status advertises the feature.
func TestRecursiveReadOnlyMounts(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "sub"), 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", filepath.Join(host, "sub")).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", filepath.Join(host, "sub")).Run() })
	pod := podConfig(t, "rro")
	podID := runPod(t, d, pod)
	c := containerConfig("c", img, "sleep 1000")
	c.Mounts = []*runtimeapi.Mount{
		{HostPath: host, ContainerPath: "/rro", Readonly: true, RecursiveReadOnly: true},
		{HostPath: host, ContainerPath: "/ro", Readonly: true},
	}
	id := runContainer(t, d, podID, pod, c)
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c",
		"touch /rro/sub/x 2>/dev/null && echo rro-sub-writable; touch /rro/x 2>/dev/null && echo rro-writable; touch /ro/sub/y && echo ro-sub-writable"}})
	if err != nil {
		t.Fatal(err)
	}
	if out := string(res.Stdout); out != "ro-sub-writable\n" {
		t.Errorf("writes: %q, want only the non-recursive mount's submount writable", out)
	}
	for _, bad := range []*runtimeapi.Mount{
		{HostPath: host, ContainerPath: "/x", RecursiveReadOnly: true},
		{HostPath: host, ContainerPath: "/x", Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{HostPath: host, ContainerPath: "/x", Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
	} {
		cfg := containerConfig("bad", img, "true")
		cfg.Mounts = []*runtimeapi.Mount{bad}
		if _, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg}); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	st, err := d.RT.Status(ctxT(t), &runtimeapi.StatusRequest{})
	if err != nil || !st.RuntimeHandlers[0].GetFeatures().GetRecursiveReadOnlyMounts() {
		t.Errorf("Status does not advertise recursive read-only mounts: %v %v", st.GetRuntimeHandlers(), err)
	}
	d.removeAllPods()
	assertNothingLeft(t, d)
}

// After the container is created, the host path of a recursive read-only
// mount can be unmounted and removed on the host (as the kubelet does with
// volumes) while the container runs: berth's staged read-only clone does
// not keep it busy. (The container's view after that is the kernel's
// propagation business; before it, the submount is there and read-only.)
func TestRecursiveReadOnlyHostPathRemovable(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	host := t.TempDir()
	sub := filepath.Join(host, "tmpfs")
	os.MkdirAll(sub, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(sub, "f"), []byte("kept"), 0o644)
	pod := podConfig(t, "rro-rm")
	podID := runPod(t, d, pod)
	c := containerConfig("c", img, "sleep 1000")
	c.Mounts = []*runtimeapi.Mount{{HostPath: host, ContainerPath: "/mnt", Readonly: true, RecursiveReadOnly: true}}
	id := runContainer(t, d, podID, pod, c)
	waitState(t, d, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	// The container sees the submount, read-only.
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c",
		"cat /mnt/tmpfs/f; echo; touch /mnt/tmpfs/x 2>&1 || echo refused"}})
	if err != nil {
		t.Fatal(err)
	}
	if out := string(res.Stdout); !strings.HasPrefix(out, "kept\n") || !strings.Contains(out, "Read-only file system") || !strings.HasSuffix(out, "refused\n") {
		t.Errorf("the container's view of the host path: %q", out)
	}
	// berth's staged clone is gone from the host, so nothing it holds
	// keeps the host path busy.
	if err := exec.Command("umount", "-l", sub).Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(host); err != nil {
		t.Errorf("removing the host path while the container runs: %v", err)
	}
}
