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
		id := runContainer(t, d, podID, pod, c)
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
		return runContainer(t, d, podID, pod, c)
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
// UpdatePodSandboxResources is accepted.
func TestUpdateResources(t *testing.T) {
	cleanupCgroupParent(t, "/berthtest/resize") // registered first: runs after the daemon's cleanup
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "resize")
	pod.Linux.CgroupParent = "/berthtest/resize"
	podID := runPod(t, d, pod)
	c := containerConfig("c", img, "sleep 1000")
	c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512}}
	id := runContainer(t, d, podID, pod, c)
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
	id := runContainer(t, d, podID, pod, c)
	st := waitState(t, d, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("over its memory limit: reason %q exit %d", st.Reason, st.ExitCode)
	}
	st2, err := d.RT.Status(ctxT(t), &runtimeapi.StatusRequest{})
	if err != nil || !st2.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Errorf("Status features = %v, %v", st2.GetFeatures(), err)
	}
}

// TestImageVolumes: an image mounted as a volume (whole, and a sub path
// of it) is read-only in the container; a sub path leaving the image is
// refused; the image stays while a container mounts it.
func TestImageVolumes(t *testing.T) {
	d, img, volRef, volID := volumeDaemon(t)
	pod := podConfig(t, "vols")
	podID := runPod(t, d, pod)
	c := containerConfig("reader", img, "sleep 1000")
	c.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/vol", Image: &runtimeapi.ImageSpec{Image: volID}, Readonly: true},
		{ContainerPath: "/sub", Image: &runtimeapi.ImageSpec{Image: volID}, ImageSubPath: "data/opaque", Readonly: true},
	}
	id := runContainer(t, d, podID, pod, c)
	var volRefInStatus string
	for _, m := range containerStatus(t, d, id).Mounts {
		if m.ContainerPath == "/vol" {
			volRefInStatus = m.GetImage().GetImageRef()
		}
	}
	if volRefInStatus != volID {
		t.Errorf("status mount /vol image_ref = %q, want %s", volRefInStatus, volID)
	}
	rw := containerConfig("rw", img, "true")
	rw.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x", Image: &runtimeapi.ImageSpec{Image: volID}}}
	if _, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: rw}); err == nil {
		t.Error("a writable image volume was accepted")
	}
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c",
		"cat /vol/data/opaque/new.txt; ls /sub; test -e /vol/data/hello.txt && echo whiteout-broken; touch /vol/x 2>/dev/null && echo writable; touch /sub/x 2>/dev/null && echo sub-writable; true"}})
	if err != nil {
		t.Fatal(err)
	}
	if out := string(res.Stdout); out != testutil.WhiteoutNewText+"new.txt\n" {
		t.Errorf("image volume contents: %q", out)
	}
	// The image is in use: removing it must not take its layers away.
	if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: volID}}); err != nil {
		t.Fatal(err)
	}
	if res, _ := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"cat", "/vol/data/opaque/new.txt"}}); string(res.GetStdout()) != testutil.WhiteoutNewText {
		t.Errorf("image volume after RemoveImage: %q", res.GetStdout())
	}
	mustPull(t, d, volRef)
	bad := containerConfig("escape", img, "true")
	bad.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x", Image: &runtimeapi.ImageSpec{Image: volID}, ImageSubPath: "../../etc", Readonly: true}}
	if _, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: bad}); err == nil {
		t.Error("an image sub path with .. was accepted")
	}
	link := containerConfig("link", img, "true")
	link.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x", Image: &runtimeapi.ImageSpec{Image: volID}, ImageSubPath: "usr/bin/env", Readonly: true}}
	if _, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: link}); err == nil {
		t.Error("an image sub path through an absolute symlink was accepted")
	}
	d.removeAllPods()
	assertNothingLeft(t, d)
}

// TestSeccomp: RuntimeDefault filters (unshare refused, ordinary work
// fine), Unconfined and privileged containers are not filtered, a
// Localhost profile applies, the deprecated path form still works.
func TestSeccomp(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "seccomp")
	podID := runPod(t, d, pod)
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	run := func(name string, sec *runtimeapi.LinuxContainerSecurityContext, cmd string) string {
		c := containerConfig(name, img, "sleep 1000")
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sec}
		id := runContainer(t, d, podID, pod, c)
		res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", cmd}})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Stdout) + string(res.Stderr)
	}
	const probe = `grep ^Seccomp: /proc/self/status; unshare -u true && echo unshared; mkdir /tmp/d && echo made`
	profileOf := func(p runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.LinuxContainerSecurityContext {
		return &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: p, LocalhostRef: ref}}
	}
	for _, tc := range []struct {
		name      string
		sec       *runtimeapi.LinuxContainerSecurityContext
		want, not []string
	}{
		{"default", profileOf(runtimeapi.SecurityProfile_RuntimeDefault, ""), []string{"Seccomp:\t2", "made"}, []string{"unshared"}},
		{"oldpath", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "runtime/default"}, []string{"Seccomp:\t2"}, []string{"unshared"}},
		{"unconfined", profileOf(runtimeapi.SecurityProfile_Unconfined, ""), []string{"Seccomp:\t0", "made"}, nil},
		{"localhost", profileOf(runtimeapi.SecurityProfile_Localhost, profile), []string{"Seccomp:\t2"}, []string{"made"}},
		{"privileged", &runtimeapi.LinuxContainerSecurityContext{Privileged: true, Seccomp: &runtimeapi.SecurityProfile{}}, []string{"Seccomp:\t0", "unshared"}, nil},
	} {
		out := run(tc.name, tc.sec, probe)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q:\n%s", tc.name, w, out)
			}
		}
	}
	bad := containerConfig("missing-profile", img, "true")
	bad.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: profileOf(runtimeapi.SecurityProfile_Localhost, "/nonexistent/profile.json")}
	if _, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: bad}); err == nil || !strings.Contains(err.Error(), "profile") {
		t.Errorf("a missing localhost profile = %v", err)
	}
}
