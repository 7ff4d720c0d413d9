package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/streaming/streamingtest"
)

// usernsHostID is where the test pods' IDs start on the host: far from
// any real user, and from critest's 1000.
const usernsHostID = 3 << 20

// mappingLine is the pods' mapping as /proc/PID/uid_map shows it.
var mappingLine = regexp.MustCompile(fmt.Sprintf(`\s0\s+%d\s+65536\n`, usernsHostID))

func usernsOptions(hostID uint32) *runtimeapi.UserNamespace {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: 65536}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
}

func fileOwner(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}

// TestUserNamespacePod: a pod with a user namespace (NamespaceMode_POD)
// runs its containers as the mapped IDs: root inside is usernsHostID
// outside, the image's files, the pod's files and volumes appear owned by
// the container's root (idmapped mounts), what the container writes lands
// on the host under the mapped IDs (layer) or the host's own (volume), the
// pod's network namespace belongs to the user namespace (its net.*
// sysctls apply, /sys mounts, port-forward reaches it), exec joins it, and
// the namespace survives a berthd crash.
func TestUserNamespacePod(t *testing.T) {
	d, img, _, layered := volumeDaemon(t)
	st, err := d.RT.Status(ctxT(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.RuntimeHandlers {
		if !h.GetFeatures().GetUserNamespaces() {
			t.Fatalf("runtime handler %q does not advertise user namespaces:\n%s", h.Name, tail(d.Logs(), 20))
		}
	}
	pod := podConfig(t, "userns")
	pod.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "81"}
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: usernsOptions(usernsHostID)},
	}
	podID := runPod(t, d, pod)
	ps, err := d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.GetNetwork().GetIp() == "" {
		t.Error("no pod IP")
	}
	if o := ps.Status.GetLinux().GetNamespaces().GetOptions().GetUsernsOptions(); o.GetMode() != runtimeapi.NamespaceMode_POD || o.GetUids()[0].GetHostId() != usernsHostID {
		t.Errorf("status user namespace options = %v", o)
	}

	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "f"), []byte("host"), 0o644)
	c := containerConfig("inside", img, strings.Join([]string{
		"cat /proc/self/uid_map /proc/self/gid_map",
		"echo uid=$(id -u) gid=$(id -g)",
		"stat -c 'owner %n %u:%g' / /etc/passwd /bin/busybox /etc/hosts /dev/shm /vol /vol/f /work/dir /img/bin/busybox /layered/data/opaque/new.txt",
		"touch /new /vol/fromctr && echo wrote",
		"echo port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)",
		"ls /sys/class/net | grep -q eth0 && echo sys-ok",
		"echo done; sleep 1000",
	}, "; "))
	c.WorkingDir = "/work/dir"
	c.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/vol", HostPath: vol},
		// Image volumes: one layer (a bind) and several (an overlay).
		{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: img}, Readonly: true},
		{ContainerPath: "/layered", Image: &runtimeapi.ImageSpec{Image: layered}, Readonly: true},
	}
	c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: pod.Linux.SecurityContext.NamespaceOptions,
	}}
	id := runContainer(t, d, podID, pod, c)
	out := waitLog(t, logPath(pod, c), "done")
	for _, want := range []string{
		"uid=0 gid=0",
		"owner / 0:0", "owner /etc/passwd 0:0", "owner /bin/busybox 0:0", "owner /etc/hosts 0:0",
		"owner /dev/shm 0:0", "owner /vol 0:0", "owner /vol/f 0:0", "owner /work/dir 0:0",
		"owner /img/bin/busybox 0:0", "owner /layered/data/opaque/new.txt 0:0",
		"wrote", "port=81", "sys-ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if n := len(mappingLine.FindAllString(out, -1)); n != 2 {
		t.Errorf("want the mapping in uid_map and gid_map, found it %d times:\n%s", n, out)
	}
	// The writable layer holds the mapped IDs; the volume the host's.
	mapped := fmt.Sprintf("%d:%d", usernsHostID, usernsHostID)
	if got := fileOwner(t, filepath.Join(d.Root, "containers", id, "upper", "new")); got != mapped {
		t.Errorf("file written to the layer is owned by %s on the host, want %s", got, mapped)
	}
	if got := fileOwner(t, filepath.Join(vol, "fromctr")); got != "0:0" {
		t.Errorf("file written to the volume is owned by %s on the host, want 0:0", got)
	}
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "id -u; cat /proc/self/uid_map"}})
	if err != nil {
		t.Fatal(err)
	}
	if out := string(res.Stdout); !strings.HasPrefix(out, "0\n") || !strings.Contains(out, fmt.Sprint(usernsHostID)) {
		t.Errorf("exec: %q", out)
	}

	// Port-forward enters the network namespace the pod's user namespace
	// owns.
	echo := containerConfig("echo", img, "echo listening; exec nc -ll -p 8080 -e cat")
	runContainer(t, d, podID, pod, echo)
	waitLog(t, logPath(pod, echo), "listening")
	pfResp, err := d.RT.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := streamingtest.DialPortForward(ctxT(t), pfResp.Url)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	waitFor(t, "an echo through port-forward", func() bool {
		s, err := pf.Open(8080)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		buf := make([]byte, 6)
		if _, err := fmt.Fprint(s, "hello\n"); err != nil {
			return false
		}
		_, err = io.ReadFull(s, buf)
		return err == nil && string(buf) == "hello\n"
	})

	// Refused in this pod: the host's user namespace, other mappings,
	// privileged. Nothing is left of them.
	for name, sec := range map[string]*runtimeapi.LinuxContainerSecurityContext{
		"node":          {NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}},
		"other-mapping": {NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: usernsOptions(usernsHostID + 65536)}},
		"privileged":    {Privileged: true},
	} {
		bad := containerConfig(name, img, "true")
		bad.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sec}
		if _, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: bad, SandboxConfig: pod}); err == nil {
			t.Errorf("container %s accepted in a pod with a user namespace", name)
		}
	}

	// The pinned namespaces outlive berthd: after a crash, a new container
	// joins the same user namespace.
	d.Kill()
	d.Start()
	c2 := containerConfig("after-crash", img, "cat /proc/self/uid_map; touch /x; stat -c 'owner %u' /x")
	id2 := runContainer(t, d, podID, pod, c2)
	waitState(t, d, id2, runtimeapi.ContainerState_CONTAINER_EXITED)
	out = waitLog(t, logPath(pod, c2), "owner")
	if !mappingLine.MatchString(out) || !strings.Contains(out, "owner 0") {
		t.Errorf("container after the restart:\n%s", out)
	}
	d.removeAllPods()
	assertNothingLeft(t, d)
}

// TestUserNamespaceRefused: user namespace options the CRI says to refuse,
// or that cannot work, fail RunPodSandbox with nothing left behind.
func TestUserNamespaceRefused(t *testing.T) {
	cniCfg, _ := cniConfig(t)
	d := newDaemon(t, cniCfg)
	m := func(cid, hid, n uint32) *runtimeapi.IDMapping {
		return &runtimeapi.IDMapping{ContainerId: cid, HostId: hid, Length: n}
	}
	one := []*runtimeapi.IDMapping{m(0, usernsHostID, 65536)}
	for name, ns := range map[string]*runtimeapi.NamespaceOption{
		"two mappings": {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{m(0, 1000, 100000), m(0, 2000, 100000)}, Gids: one}},
		"container ID 0 unmapped": {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{m(1, 1000, 100000)}, Gids: []*runtimeapi.IDMapping{m(1, 1000, 100000)}}},
		"no mappings":    {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
		"empty mapping":  {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{m(0, 1000, 0)}, Gids: one}},
		"past 2^32":      {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{m(0, 1<<32-10, 65536)}, Gids: one}},
		"CONTAINER mode": {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}},
		"TARGET mode":    {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}},
		"host network":   {Network: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}},
		"host PID":       {Pid: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}},
		"host IPC":       {Ipc: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}},
	} {
		pod := podConfig(t, "refused")
		pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}
		if _, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: pod}); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "InvalidArgument") {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	// NODE is the host's user namespace: an ordinary pod.
	pod := podConfig(t, "node")
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
	}}
	runPod(t, d, pod)
	d.removeAllPods()
	assertNothingLeft(t, d)
}
