package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// TestPodLifecycle runs a pod whose container serves on a port, checks it
// from the host, then takes everything down and checks nothing is left.
func TestPodLifecycle(t *testing.T) {
	d, img, subnet := podDaemon(t, "")
	pod := podConfig(t, "web")
	podID := runPod(t, d, pod)

	st, err := d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	s := st.Status
	if s.State != runtimeapi.PodSandboxState_SANDBOX_READY || s.Metadata.Name != "web" || s.Metadata.Attempt != 1 {
		t.Errorf("sandbox status = %v", s)
	}
	if diff := cmp.Diff(pod.Labels, s.Labels); diff != "" {
		t.Errorf("labels changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod.Annotations, s.Annotations); diff != "" {
		t.Errorf("annotations changed (-want +got):\n%s", diff)
	}
	ip := net.ParseIP(s.Network.Ip)
	if ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod IP %q not in %s", s.Network.Ip, subnet)
	}
	if st.Info["info"] == "" {
		t.Error("verbose status has no info")
	}

	server := containerConfig("server", img,
		`echo started; while true; do printf 'HTTP/1.0 200 OK\r\n\r\nhello from %s\n' "$(hostname)" | nc -l -p 8080; done`)
	cid := createContainer(t, d, podID, pod, server)
	if st := containerStatus(t, d, cid); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.CreatedAt == 0 || st.StartedAt != 0 {
		t.Errorf("created container status = %v", st)
	}
	startContainer(t, d, cid)
	cst := waitState(t, d, cid, runtimeapi.ContainerState_CONTAINER_RUNNING)
	if cst.LogPath != logPath(pod, server) || cst.ImageRef == "" || cst.Labels["ctr"] != "server" || cst.Annotations["a"] != "b" {
		t.Errorf("running container status = %v", cst)
	}
	waitLog(t, logPath(pod, server), "stdout F started\n")

	// The pod IP is reachable from the host, as probes need.
	body := httpGet(t, net.JoinHostPort(ip.String(), "8080"))
	if !strings.Contains(body, "hello from web") {
		t.Errorf("GET pod:8080 = %q", body)
	}

	// ExecSync: output, exit codes, timeout.
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "echo out; echo err >&2; cat /etc/hostname"}})
	if err != nil || string(res.Stdout) != "out\nweb\n" || string(res.Stderr) != "err\n" || res.ExitCode != 0 {
		t.Errorf("ExecSync = %q %q %d %v", res.GetStdout(), res.GetStderr(), res.GetExitCode(), err)
	}
	res, err = d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "exit 3"}})
	if err != nil || res.ExitCode != 3 {
		t.Errorf("ExecSync exit 3 = %v %v", res, err)
	}
	start := time.Now()
	_, err = d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sleep", "30"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 15*time.Second {
		t.Errorf("ExecSync past its timeout = %v after %s", err, time.Since(start))
	}
	if res, _ := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "ps -o comm | grep -c sleep"}}); strings.TrimSpace(string(res.GetStdout())) != "0" {
		t.Errorf("the timed-out command still runs: %q", res.GetStdout())
	}

	// Stop: the shell is not PID 1 (the pod shares the infra process's PID
	// namespace, the CRI's default), so SIGTERM kills it at once.
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	cst = containerStatus(t, d, cid)
	if cst.State != runtimeapi.ContainerState_CONTAINER_EXITED || cst.ExitCode != 143 || cst.FinishedAt == 0 || cst.Reason != "Error" {
		t.Errorf("stopped container = %v", cst)
	}
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 1}); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}
	if _, err := d.RT.RemoveContainer(ctxT(t), &runtimeapi.RemoveContainerRequest{ContainerId: cid}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RT.ContainerStatus(ctxT(t), &runtimeapi.ContainerStatusRequest{ContainerId: cid}); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed container = %v", err)
	}

	for i := 0; i < 2; i++ { // stop is idempotent
		if _, err := d.RT.StopPodSandbox(ctxT(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("stopped sandbox = %v", st.GetStatus().GetState())
	}
	if _, err := d.RT.RemovePodSandbox(ctxT(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// assertNothingLeft checks that no pod left a trace: records, namespace pins,
// mounts, shims, IP leases.
func assertNothingLeft(t *testing.T, d *daemon) {
	t.Helper()
	pods, err := d.RT.ListPodSandbox(ctxT(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatalf("ListPodSandbox: %v", err)
	}
	ctrs, err := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	if len(pods.Items) != 0 || len(ctrs.Containers) != 0 {
		t.Errorf("left: %d pods, %d containers", len(pods.Items), len(ctrs.Containers))
	}
	for _, dir := range []string{"netns", "userns"} {
		if ns, _ := os.ReadDir(filepath.Join(d.State, dir)); len(ns) != 0 {
			t.Errorf("%s pins left: %v", dir, ns)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if (strings.Contains(l, d.State+"/") || strings.Contains(l, d.Root+"/")) && !strings.Contains(l, d.State+"/netns ") && !strings.Contains(l, d.State+"/userns ") {
			t.Errorf("mount left: %s", l)
		}
	}
	if socks, _ := os.ReadDir(filepath.Join(d.State, "s")); len(socks) != 0 {
		t.Errorf("shim sockets left: %v", socks)
	}
	leases, _ := filepath.Glob(filepath.Join(d.State, "cni", "ipam", "*", "1*"))
	if len(leases) != 0 {
		t.Errorf("IP leases left: %v", leases)
	}
}

func httpGet(t *testing.T, addr string) string {
	t.Helper()
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(bufio.NewReader(conn))
	return string(b)
}

// TestLogsAndExitCodes checks the CRI log byte for byte, long lines split
// into partial records, and exit codes.
func TestLogsAndExitCodes(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "logs")
	podID := runPod(t, d, pod)
	long := strings.Repeat("x", 20000)
	c := containerConfig("logger", img, fmt.Sprintf(`echo one; echo two >&2; printf 'no newline'; sleep 0.2; echo; echo %s; exit 7`, long))
	cid := runContainer(t, d, podID, pod, c)
	st := waitState(t, d, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 7 || st.Reason != "Error" || st.StartedAt == 0 || st.FinishedAt < st.StartedAt {
		t.Errorf("exited status = %v", st)
	}
	b, err := os.ReadFile(logPath(pod, c))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		ts, rest, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("bad timestamp in %q", line)
		}
		if len(rest) > 60 {
			rest = rest[:60] + fmt.Sprintf("…(%d)", len(rest))
		}
		got = append(got, rest)
	}
	// Stdout and stderr go through separate pipes, so only the order within
	// each stream is fixed.
	stdout, stderr := []string{}, []string{}
	for _, g := range got {
		if strings.HasPrefix(g, "stderr") {
			stderr = append(stderr, g)
		} else {
			stdout = append(stdout, g)
		}
	}
	wantOut := []string{"stdout F one", "stdout F no newline", "stdout P " + strings.Repeat("x", 51) + "…(16393)", "stdout F " + strings.Repeat("x", 51) + "…(3625)"}
	if diff := cmp.Diff(wantOut, stdout); diff != "" {
		t.Errorf("stdout records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"stderr F two"}, stderr); diff != "" {
		t.Errorf("stderr records (-want +got):\n%s", diff)
	}
	ok := containerConfig("ok", img, "true")
	okID := runContainer(t, d, podID, pod, ok)
	if st := waitState(t, d, okID, runtimeapi.ContainerState_CONTAINER_EXITED); st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("exit 0 status = %v", st)
	}
}

// TestSharedNamespaces runs two containers in one pod: they share the
// network (one reaches the other on localhost), UTS and IPC namespaces.
func TestSharedNamespaces(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "shared")
	podID := runPod(t, d, pod)
	a := createContainer(t, d, podID, pod, containerConfig("a", img, `while true; do echo pong | nc -l -p 9000; done`))
	b := createContainer(t, d, podID, pod, containerConfig("b", img, `sleep 1000`))
	own := containerConfig("own-pid", img, `sleep 1000`)
	own.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}}
	c := createContainer(t, d, podID, pod, own)
	for _, id := range []string{a, b, c} {
		startContainer(t, d, id)
		waitState(t, d, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	}
	var out string
	for i := 0; i < 50 && out != "pong\n"; i++ {
		res, _ := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: b, Cmd: []string{"sh", "-c", "nc 127.0.0.1 9000 </dev/null"}, Timeout: 5})
		out = string(res.GetStdout())
		time.Sleep(50 * time.Millisecond)
	}
	if out != "pong\n" {
		t.Errorf("b could not reach a on localhost: %q", out)
	}
	ns := func(id, kind string) string {
		res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"readlink", "/proc/self/ns/" + kind}})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Stdout)
	}
	for _, kind := range []string{"net", "ipc", "uts", "pid"} {
		if ns(a, kind) != ns(b, kind) {
			t.Errorf("%s namespace not shared", kind)
		}
	}
	if ns(a, "pid") == ns(c, "pid") || ns(a, "net") != ns(c, "net") {
		t.Errorf("PID namespace mode CONTAINER: pid %s vs %s", ns(a, "pid"), ns(c, "pid"))
	}
	// With a shared PID namespace the pod's infra process is PID 1.
	if res, _ := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: b, Cmd: []string{"cat", "/proc/1/cmdline"}}); !strings.HasPrefix(string(res.GetStdout()), "/pause") {
		t.Errorf("PID 1 in a POD-mode container is %q", res.GetStdout())
	}
	// Filters: by sandbox, state and label.
	list := func(f *runtimeapi.ContainerFilter) int {
		resp, err := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Containers)
	}
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	for _, tc := range []struct {
		f    *runtimeapi.ContainerFilter
		want int
	}{
		{nil, 3},
		{&runtimeapi.ContainerFilter{PodSandboxId: podID}, 3},
		{&runtimeapi.ContainerFilter{PodSandboxId: "nope"}, 0},
		{&runtimeapi.ContainerFilter{Id: a[:8]}, 1},
		{&runtimeapi.ContainerFilter{State: running, LabelSelector: map[string]string{"ctr": "b"}}, 1},
		{&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"ctr": "c"}}, 0},
	} {
		if n := list(tc.f); n != tc.want {
			t.Errorf("ListContainers(%v) = %d, want %d", tc.f, n, tc.want)
		}
	}
	pods, _ := d.RT.ListPodSandbox(ctxT(t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"app": "shared"},
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	if len(pods.GetItems()) != 1 {
		t.Errorf("ListPodSandbox by label and state = %v", pods.GetItems())
	}
}

// TestRuntimeBadRequests: unknown ids, missing metadata, duplicates; none
// of them changes anything.
func TestRuntimeBadRequests(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	ctx := ctxT(t)
	unknown := strings.Repeat("f", 64)
	if _, err := d.RT.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStatus(unknown) = %v", err)
	}
	if _, err := d.RT.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("StartContainer(unknown) = %v", err)
	}
	if _, err := d.RT.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStatus(unknown) = %v", err)
	}
	if _, err := d.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("StopPodSandbox(unknown) = %v, want success", err)
	}
	if _, err := d.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("RemovePodSandbox(unknown) = %v, want success", err)
	}
	if _, err := d.RT.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("RemoveContainer(unknown) = %v, want success", err)
	}
	if _, err := d.RT.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("StopContainer(unknown) = %v, want success", err)
	}
	if _, err := d.RT.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RunPodSandbox without metadata = %v", err)
	}
	pod := podConfig(t, "dup")
	podID := runPod(t, d, pod)
	if _, err := d.RT.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate RunPodSandbox = %v", err)
	}
	if _, err := d.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: &runtimeapi.ContainerConfig{Image: &runtimeapi.ImageSpec{Image: img}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateContainer without metadata = %v", err)
	}
	if _, err := d.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("x", "no-such-image:1", "true")}); status.Code(err) != codes.NotFound {
		t.Errorf("CreateContainer with an unknown image = %v", err)
	}
	if _, err := d.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: unknown, Config: containerConfig("x", img, "true")}); status.Code(err) != codes.NotFound {
		t.Errorf("CreateContainer in an unknown sandbox = %v", err)
	}
	createContainer(t, d, podID, pod, containerConfig("c", img, "true"))
	if _, err := d.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("c", img, "true")}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate CreateContainer = %v", err)
	}
	ctrs, _ := d.RT.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	pods, _ := d.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if len(ctrs.GetContainers()) != 1 || len(pods.GetItems()) != 1 {
		t.Errorf("bad requests changed things: %d containers, %d pods", len(ctrs.GetContainers()), len(pods.GetItems()))
	}
	// A container's image may be named by ID, tag or digest.
	st := imageStatus(t, d, img, false)
	for i, name := range []string{st.Image.Id, st.Image.RepoDigests[0]} {
		createContainer(t, d, podID, pod, containerConfig(fmt.Sprintf("by-%d", i), name, "true"))
	}
}

// TestStopTimeout: a container that ignores SIGTERM is killed once the
// stop timeout has passed.
func TestStopTimeout(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "stop")
	podID := runPod(t, d, pod)
	c := containerConfig("stubborn", img, `trap '' TERM; echo ready; while true; do sleep 0.1; done`)
	cid := runContainer(t, d, podID, pod, c)
	waitLog(t, logPath(pod, c), "ready")
	start := time.Now()
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if st := containerStatus(t, d, cid); st.ExitCode != 137 || st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("a container ignoring SIGTERM: %v", st)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Errorf("stop with a 2s timeout took %s", took)
	}
}

// TestImageConfigAndStopSignal: the image's entrypoint/env/workdir/user
// reach the process; its STOPSIGNAL is used by StopContainer.
func TestImageConfigAndStopSignal(t *testing.T) {
	d, img, _ := podDaemon(t, "", testutil.WithEntrypoint("/bin/sh", "-c"), testutil.WithCmd("echo from image cmd"),
		testutil.WithEnv("PATH=/bin", "FROM_IMAGE=yes"), testutil.WithWorkdir("/data"), testutil.WithUser("berth"),
		testutil.WithStopSignal("SIGUSR1"))
	pod := podConfig(t, "cfg")
	podID := runPod(t, d, pod)
	c := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "env"},
		Image:    &runtimeapi.ImageSpec{Image: img},
		Args:     []string{`echo "$FROM_IMAGE $FROM_REQ $(pwd) $(id -u):$(id -g)"; trap 'echo got usr1; exit 0' USR1; while true; do sleep 0.1; done`},
		Envs:     []*runtimeapi.KeyValue{{Key: "FROM_REQ", Value: []byte("req")}},
		LogPath:  "env.log",
	}
	cid := runContainer(t, d, podID, pod, c)
	waitLog(t, logPath(pod, c), "yes req /data 1000:1000")
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 20}); err != nil {
		t.Fatal(err)
	}
	if st := containerStatus(t, d, cid); st.ExitCode != 0 {
		t.Errorf("stopped with the image's STOPSIGNAL: exit %d", st.ExitCode)
	}
	waitLog(t, logPath(pod, c), "got usr1")

	// A stop signal of the pod's: systemd's SIGRTMIN+3 (37 on Linux).
	rt := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "rtmin"},
		Image:      &runtimeapi.ImageSpec{Image: img},
		Args:       []string{`trap 'echo got rtmin+3; exit 0' 37; echo ready; while true; do sleep 0.1; done`},
		StopSignal: runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3,
		LogPath:    "rtmin.log",
	}
	rid := runContainer(t, d, podID, pod, rt)
	waitLog(t, logPath(pod, rt), "ready")
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: rid, Timeout: 20}); err != nil {
		t.Fatal(err)
	}
	if st := containerStatus(t, d, rid); st.ExitCode != 0 {
		t.Errorf("stopped with the request's SIGRTMIN+3: exit %d", st.ExitCode)
	}
	waitLog(t, logPath(pod, rt), "got rtmin+3")
}
