package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// TestUserAndGroups: run as a user by name and by id, supplemental groups
// merged from the image's /etc/group or, with the Strict policy, not;
// ContainerStatus reports the identity.
func TestUserAndGroups(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "users")
	podID := runPod(t, d, pod)
	run := func(name string, sec *runtimeapi.LinuxContainerSecurityContext) (string, *runtimeapi.ContainerUser) {
		c := containerConfig(name, img, "id; sleep 1000")
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sec}
		id := createContainer(t, d, podID, pod, c)
		startContainer(t, d, id)
		out := waitLog(t, logPath(pod, c), "uid=")
		return out, containerStatus(t, d, id).User
	}
	// The image's berth user is in group wheel (10) by /etc/group.
	out, user := run("merge", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: testutil.TestUser, SupplementalGroups: []int64{4242}})
	if !strings.Contains(out, "uid=1000(berth) gid=1000(berth) groups=10(wheel),1000(berth),4242") && !strings.Contains(out, "groups=1000(berth),10(wheel),4242") {
		t.Errorf("merge policy: %q", out)
	}
	if user.GetLinux().GetUid() != 1000 || user.GetLinux().GetGid() != 1000 || !slices.Contains(user.GetLinux().GetSupplementalGroups(), 10) {
		t.Errorf("merge policy status user = %v", user)
	}
	out, user = run("strict", &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser: &runtimeapi.Int64Value{Value: 1000}, SupplementalGroups: []int64{4242},
		SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict})
	if strings.Contains(out, "wheel") || !strings.Contains(out, "4242") {
		t.Errorf("strict policy: %q", out)
	}
	if g := user.GetLinux().GetSupplementalGroups(); slices.Contains(g, 10) || !slices.Contains(g, 4242) {
		t.Errorf("strict policy status groups = %v", g)
	}
	out, _ = run("uidgid", &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser: &runtimeapi.Int64Value{Value: 4000}, RunAsGroup: &runtimeapi.Int64Value{Value: 5000}})
	if !strings.Contains(out, "uid=4000 gid=5000") {
		t.Errorf("uid/gid not in the image: %q", out)
	}
	c := containerConfig("nouser", img, "true")
	c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nosuchuser"}}
	_, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c})
	if err == nil || !strings.Contains(err.Error(), "nosuchuser") {
		t.Errorf("unknown user name = %v", err)
	}
}

// TestPIDNamespaceTarget: a container in TARGET mode sees the target
// container's processes.
func TestPIDNamespaceTarget(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "target")
	podID := runPod(t, d, pod)
	own := func(name, cmd, target string) string {
		c := containerConfig(name, img, cmd)
		ns := &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
		if target != "" {
			ns = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: target}
		}
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns}}
		id := createContainer(t, d, podID, pod, c)
		startContainer(t, d, id)
		return id
	}
	a := own("a", "sleep 4242", "")
	waitState(t, d, a, runtimeapi.ContainerState_CONTAINER_RUNNING)
	b := own("b", "sleep 1000", a)
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: b, Cmd: []string{"ps", "-o", "args"}})
	if err != nil || !strings.Contains(string(res.Stdout), "sleep 4242") {
		t.Errorf("TARGET container's ps = %q %v", res.GetStdout(), err)
	}
}

// TestUpdateResources: UpdateContainerResources changes the cgroup limit
// of a running container and its status reports it;
// UpdatePodSandboxResources is recorded.
func TestUpdateResources(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "resize")
	pod.Linux.CgroupParent = "/berthtest/resize"
	podID := runPod(t, d, pod)
	c := containerConfig("c", img, "sleep 1000")
	c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512}}
	id := createContainer(t, d, podID, pod, c)
	startContainer(t, d, id)
	limit := func() string {
		for _, p := range []string{
			filepath.Join("/sys/fs/cgroup/memory/berthtest/resize", id, "memory.limit_in_bytes"),
			filepath.Join("/sys/fs/cgroup/berthtest/resize", id, "memory.max"),
		} {
			if b, err := os.ReadFile(p); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		t.Fatal("no memory limit file for the container's cgroup")
		return ""
	}
	if got := limit(); got != "67108864" {
		t.Errorf("memory limit at create = %s", got)
	}
	_, err := d.RT.UpdateContainerResources(ctxT(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	if got := limit(); got != "134217728" {
		t.Errorf("memory limit after update = %s", got)
	}
	if st := containerStatus(t, d, id); st.GetResources().GetLinux().GetMemoryLimitInBytes() != 128<<20 {
		t.Errorf("status resources = %v", st.GetResources())
	}
	if _, err := d.RT.UpdatePodSandboxResources(ctxT(t), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: podID,
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20}}); err != nil {
		t.Fatal(err)
	}
}

// TestOOMKilled: a container that exceeds its memory limit is reported
// with reason OOMKilled.
func TestOOMKilled(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "oom")
	podID := runPod(t, d, pod)
	c := containerConfig("hog", img, "dd if=/dev/zero of=/dev/null bs=128M count=1")
	c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}}
	id := createContainer(t, d, podID, pod, c)
	startContainer(t, d, id)
	st := waitState(t, d, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("over its memory limit: reason %q exit %d", st.Reason, st.ExitCode)
	}
	st2, err := d.RT.Status(ctxT(t), &runtimeapi.StatusRequest{})
	if err != nil || !st2.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Errorf("Status features = %v, %v", st2.GetFeatures(), err)
	}
}
