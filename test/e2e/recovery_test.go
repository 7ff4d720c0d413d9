package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRestartRecovery kills berthd with SIGKILL while a pod runs three
// containers in three states, lets one exit meanwhile, and restarts it.
func TestRestartRecovery(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "recover")
	podID := runPod(t, d, pod)
	logger := containerConfig("logger", img, `i=0; while true; do echo "line $i"; i=$((i+1)); sleep 0.01; done`)
	quitter := containerConfig("quitter", img, `sleep 1; echo bye; exit 5`)
	waiter := containerConfig("waiter", img, `echo started late; sleep 1000`)
	a := createContainer(t, d, podID, pod, logger)
	b := createContainer(t, d, podID, pod, quitter)
	c := createContainer(t, d, podID, pod, waiter)
	startContainer(t, d, a)
	startContainer(t, d, b)
	waitLog(t, logPath(pod, logger), "line 5\n")

	d.Kill()
	time.Sleep(2 * time.Second) // quitter exits while berthd is away; logger keeps logging
	d.Start()

	if st := containerStatus(t, d, a); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("logger after restart: %v", st.State)
	}
	if st := containerStatus(t, d, b); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 5 {
		t.Errorf("quitter after restart: %v exit %d", st.State, st.ExitCode)
	}
	if st := containerStatus(t, d, c); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("waiter after restart: %v", st.State)
	}
	sb, err := d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil || sb.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod after restart: %v %v", sb.GetStatus().GetState(), err)
	}
	startContainer(t, d, c)
	waitLog(t, logPath(pod, waiter), "started late")
	if res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: a, Cmd: []string{"echo", "still here"}}); err != nil || string(res.Stdout) != "still here\n" {
		t.Errorf("exec after restart: %v %v", res, err)
	}
	waitLog(t, logPath(pod, quitter), "stdout F bye\n")
	// The logger wrote on while berthd was down: its log has every line,
	// in order, none lost.
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: a, Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(logPath(pod, logger))
	lines := strings.Split(strings.TrimSpace(string(b2)), "\n")
	for i, l := range lines {
		if want := fmt.Sprintf("stdout F line %d", i); !strings.HasSuffix(l, want) {
			t.Fatalf("log line %d = %q, want …%q", i, l, want)
		}
	}
	if len(lines) < 150 {
		t.Errorf("only %d log lines over more than 2s at 100/s", len(lines))
	}
	// The exit while berthd was away is seen by a watcher adopted at
	// restart too: the waiter dies now and is reported.
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: c, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	d.removeAllPods()
	assertNothingLeft(t, d)
}

// TestKillDuringConcurrentCreates kills berthd in the middle of a batch of
// concurrent pod and container creations, half of the pods with user
// namespaces. After a restart every object is whole or gone, and removing
// the whole ones leaves nothing behind.
func TestKillDuringConcurrentCreates(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	const n = 8
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pod := podConfig(t, fmt.Sprintf("batch-%d", i))
			if i%2 == 1 {
				// Half the pods have user namespaces: more pins to undo.
				pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
					UsernsOptions: usernsOptions(usernsHostID + uint32(i)*65536),
				}}
			}
			resp, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
			if err != nil {
				return
			}
			c, err := d.RT.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: resp.PodSandboxId, Config: containerConfig("c", img, "sleep 1000"), SandboxConfig: pod})
			if err != nil {
				return
			}
			d.RT.StartContainer(ctxT(t), &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId})
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	// Kill when some pods have containers and others are still being made.
	for strings.Count(d.Logs(), "container created") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	d.Kill()
	wg.Wait()
	d.Start()

	pods, err := d.RT.ListPodSandbox(ctxT(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods.Items {
		if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready++
		}
	}
	ctrs, _ := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{})
	for _, c := range ctrs.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
			t.Errorf("container %s in state UNKNOWN after recovery", c.Id[:12])
		}
		if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
			startContainer(t, d, c.Id)
		}
	}
	t.Logf("after the crash: %d pods (%d ready), %d containers", len(pods.Items), ready, len(ctrs.Containers))
	if ready < 2 {
		t.Errorf("pods ready before the kill are gone: %d ready", ready)
	}
	// The pods that survived work (a new container runs from the image's
	// layers, which the clean-up of interrupted creates must not have
	// touched), and their names are still taken.
	for _, p := range pods.Items {
		if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		check := containerConfig("after-crash", img, "test -x /bin/busybox && ls / >/dev/null")
		check.LogPath = ""
		st := waitState(t, d, runContainer(t, d, p.Id, podConfig(t, p.Metadata.Name), check), runtimeapi.ContainerState_CONTAINER_EXITED)
		if st.ExitCode != 0 {
			t.Errorf("a new container in recovered pod %s exited %d: %s", p.Metadata.Name, st.ExitCode, st.Message)
		}
		_, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig(t, p.Metadata.Name)})
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("a recovered pod's name is free again: %v", err)
		}
	}
	if shims := shimsOf(d); len(shims) == 0 && ready > 0 {
		t.Errorf("no shims for %d ready pods", ready)
	}
	d.removeAllPods()
	assertNothingLeft(t, d)
	waitFor(t, "every shim process to exit", func() bool { return len(shimsOf(d)) == 0 })
}

// shimsOf lists the pids of berth-shim processes of d (their argument is a
// config file under d's state).
func shimsOf(d *daemon) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) >= 2 && strings.HasSuffix(args[0], "berth-shim") && strings.HasPrefix(args[1], d.State) {
			pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestShimKilled: when a container's shim is killed with SIGKILL, the
// container is reported exited instead of hanging, and is not left
// running unwatched.
func TestShimKilled(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "orphan")
	podID := runPod(t, d, pod)
	cid := runContainer(t, d, podID, pod, containerConfig("c", img, "sleep 1000"))
	resp, err := d.RT.ContainerStatus(ctxT(t), &runtimeapi.ContainerStatusRequest{ContainerId: cid, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid     int `json:"pid"`
		ShimPid int `json:"shimPid"`
	}
	json.Unmarshal([]byte(resp.Info["info"]), &info)
	if info.ShimPid == 0 || info.Pid == 0 {
		t.Fatalf("verbose info has no pids: %s", resp.Info["info"])
	}
	syscall.Kill(info.ShimPid, syscall.SIGKILL)
	st := waitState(t, d, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 137 {
		t.Errorf("exit code after the shim died = %d", st.ExitCode)
	}
	waitFor(t, fmt.Sprintf("container process %d to die with its shim", info.Pid), func() bool {
		return syscall.Kill(info.Pid, 0) != nil
	})
}

// TestKubeletRetries: the kubelet gives up on a slow RunPodSandbox or
// CreateContainer and sends the same request again. The retry gets the
// object the first request made (while that is still being made, or after
// it was finished for nobody), never a second one; once someone received
// it, the name is taken.
func TestKubeletRetries(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	impatient := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	pod := podConfig(t, "retried")
	if _, err := d.RT.RunPodSandbox(impatient(), &runtimeapi.RunPodSandboxRequest{Config: pod}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("RunPodSandbox within 5 ms: %v, want DeadlineExceeded", err)
	}
	// At once: the first request is most likely still running.
	podID := runPod(t, d, pod)
	if _, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: pod}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("third RunPodSandbox: %v, want AlreadyExists", err)
	}
	pods, err := d.RT.ListPodSandbox(ctxT(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Id != podID || pods.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pods after the retry: %v, want %s ready", pods.Items, podID)
	}

	c := containerConfig("retried", img, "sleep 1000")
	req := &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c, SandboxConfig: pod}
	if _, err := d.RT.CreateContainer(impatient(), req); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("CreateContainer within 5 ms: %v, want DeadlineExceeded", err)
	}
	// Later: the first request has most likely finished, for nobody. (On
	// a loaded machine it may not have reached berthd at all; the retry
	// then makes the container: one either way.)
	time.Sleep(500 * time.Millisecond)
	id := createContainer(t, d, podID, pod, c)
	if _, err := d.RT.CreateContainer(ctxT(t), req); status.Code(err) != codes.AlreadyExists {
		t.Errorf("third CreateContainer: %v, want AlreadyExists", err)
	}
	ctrs, err := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs.Containers) != 1 || ctrs.Containers[0].Id != id {
		t.Errorf("containers after the retry: %v, want %s", ctrs.Containers, id)
	}
	startContainer(t, d, id)
	waitState(t, d, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	d.removeAllPods()
	assertNothingLeft(t, d)
}
