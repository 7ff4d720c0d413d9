package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// A real kubelet (BERTH_KUBELET, built by hack/build-kubelet.sh; `make
// kubelet-e2e`) in standalone mode against a private berthd: static pods
// from a manifest directory, no API server. What the kubelet reports is
// read from its read-only endpoints (/pods, /runningpods/) and the log
// files under its pod log directory, as a user would.

// kubelet wraps testutil.Kubelet with waits that fail the (sub)test
// they are given.
type kubelet struct {
	*testutil.Kubelet
	logs *testutil.SyncBuffer
}

func startKubelet(t *testing.T, bin, sock string) *kubelet {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	kl, err := testutil.StartKubelet(testutil.KubeletOptions{Binary: bin, Dir: t.TempDir(), Endpoint: sock, Output: logs})
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(logs.String(), 60))
	}
	t.Cleanup(func() {
		kl.Stop()
		os.WriteFile(filepath.Join(os.Getenv("BERTH_BIN"), "kubelet.log"), []byte(logs.String()), 0o644)
		if t.Failed() {
			t.Logf("kubelet log (all of it in $BERTH_BIN/kubelet.log):\n%s", tail(logs.String(), 80))
		}
	})
	return &kubelet{Kubelet: kl, logs: logs}
}

// waitPod waits until cond holds for the static pod from manifest name.
func (k *kubelet) waitPod(t *testing.T, name, what string, timeout time.Duration, cond func(testutil.KubeletPod) bool) testutil.KubeletPod {
	t.Helper()
	var last testutil.KubeletPod
	k.waitFor(t, fmt.Sprintf("pod %s: %s", name, what), timeout, func() bool {
		p, ok := k.Pod(name)
		if ok {
			last = p
		}
		return ok && cond(p)
	}, func() string {
		b, _ := json.MarshalIndent(last.Status, "", "  ")
		return "last status:\n" + string(b)
	})
	return last
}

// waitFor polls cond, failing the test when the kubelet exits or the time
// is up; more, if not nil, adds to the failure message.
func (k *kubelet) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool, more ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := k.Exited(); err != nil {
			t.Fatalf("%v\n%s", err, tail(k.logs.String(), 60))
		}
		if time.Now().After(deadline) {
			msg := ""
			for _, f := range more {
				msg += "\n" + f()
			}
			t.Fatalf("timed out waiting for %s%s", what, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (k *kubelet) drop(t *testing.T, name, manifest string) {
	t.Helper()
	if err := k.Drop(name, manifest); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the logs of a pod's container (all its files)
// contain want, and returns them.
func (k *kubelet) waitLog(t *testing.T, p testutil.KubeletPod, container, want string) string {
	t.Helper()
	var text string
	k.waitFor(t, fmt.Sprintf("%q in the log of %s/%s", want, p.Metadata.Name, container), time.Minute, func() bool {
		files, _ := filepath.Glob(filepath.Join(k.ContainerLogDir(p, container), "*.log"))
		text = ""
		for _, f := range files {
			b, _ := os.ReadFile(f)
			text += string(b)
		}
		return strings.Contains(text, want)
	}, func() string { return "log:\n" + tail(text, 20) })
	return text
}

func TestKubelet(t *testing.T) {
	bin := os.Getenv("BERTH_KUBELET")
	if bin == "" {
		t.Skip("BERTH_KUBELET is not set: run through `make kubelet-e2e` (hack/build-kubelet.sh builds it)")
	}
	// The QoS cgroups the kubelet makes (/kubepods on every hierarchy),
	// removed once its pods are gone.
	cleanupCgroupParent(t, "/kubepods")
	d, img, _ := podDaemon(t, "")
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(os.Getenv("BERTH_BIN"), "kubelet-berthd.log"), []byte(d.Logs()), 0o644)
	})
	k := startKubelet(t, bin, d.Socket)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "greeting"), []byte("from-the-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Every manifest at once, as a node booting with static pods would.
	k.drop(t, "basic", testutil.StaticPod("basic", "Always", fmt.Sprintf(`  containers:
  - name: main
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c"]
    args: ["echo GREETING=$GREETING; cat /host/greeting; echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null); echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null); exec sleep 3600"]
    env:
    - {name: GREETING, value: hello-kubelet}
    resources:
      limits: {memory: 64Mi, cpu: 250m}
    volumeMounts:
    - {name: host, mountPath: /host, readOnly: true}
  volumes:
  - name: host
    hostPath: {path: %q, type: Directory}
`, img, hostDir)))
	k.drop(t, "init", testutil.StaticPod("init", "Always", fmt.Sprintf(`  initContainers:
  - name: setup
    image: %[1]s
    command: ["sh", "-c", "echo made-by-init > /cache/note"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  containers:
  - name: main
    image: %[1]s
    command: ["sh", "-c", "cat /cache/note; exec sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes:
  - {name: cache, emptyDir: {}}
`, img)))
	k.drop(t, "never", testutil.StaticPod("never", "Never", fmt.Sprintf(`  containers:
  - name: fail
    image: %s
    command: ["sh", "-c", "echo failing; exit 3"]
`, img)))
	// Fails twice, then succeeds: the count lives in an emptyDir, which
	// outlives the container's restarts.
	k.drop(t, "onfailure", testutil.StaticPod("onfailure", "OnFailure", fmt.Sprintf(`  containers:
  - name: flaky
    image: %s
    command: ["sh", "-c", "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; echo attempt $n; [ $n -ge 3 ]"]
    volumeMounts: [{name: state, mountPath: /state}]
  volumes:
  - {name: state, emptyDir: {}}
`, img)))
	k.drop(t, "always", testutil.StaticPod("always", "Always", fmt.Sprintf(`  containers:
  - name: quick
    image: %s
    command: ["sh", "-c", "echo quick run; exit 0"]
`, img)))
	k.drop(t, "probes", testutil.StaticPod("probes", "Always", fmt.Sprintf(`  containers:
  - name: web
    image: %[1]s
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec busybox httpd -f -p 8080 -h /www"]
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
  - name: sick
    image: %[1]s
    command: ["sh", "-c", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
`, img)))
	k.drop(t, "hostnet", testutil.StaticPod("hostnet", "Always", fmt.Sprintf(`  hostNetwork: true
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", "echo netns=$(readlink /proc/self/ns/net); grep -c berthnode /etc/hosts; exec sleep 3600"]
`, img)))
	k.drop(t, "chatty", testutil.StaticPod("chatty", "Always", fmt.Sprintf(`  containers:
  - name: talk
    image: %s
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i of a container that logs a lot; [ $((i %% 50)) = 0 ] && sleep 0.05; done"]
`, img)))

	t.Run("running with env, args, hostPath and limits", func(t *testing.T) {
		p := k.waitPod(t, "basic", "main running", 2*time.Minute, func(p testutil.KubeletPod) bool {
			return p.Running("main")
		})
		if p.Status.Phase != "Running" || p.Status.PodIP == "" {
			t.Errorf("phase %q, pod IP %q; want Running with an IP", p.Status.Phase, p.Status.PodIP)
		}
		if id := p.Container("main").ContainerID; !strings.HasPrefix(id, "berth://") {
			t.Errorf("container ID %q, want berth://…", id)
		}
		log := k.waitLog(t, p, "main", "quota=")
		for _, want := range []string{"GREETING=hello-kubelet", "from-the-host", "mem=67108864"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		// 250m: 25000 of 100000 µs (v1 cfs_quota_us, or v2 cpu.max).
		if !strings.Contains(log, "quota=25000") {
			t.Errorf("log lacks the CPU quota 25000:\n%s", log)
		}
	})

	t.Run("init container and emptyDir", func(t *testing.T) {
		p := k.waitPod(t, "init", "main running", 2*time.Minute, func(p testutil.KubeletPod) bool {
			return p.Running("main")
		})
		if len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Terminated == nil ||
			p.Status.InitContainerStatuses[0].State.Terminated.ExitCode != 0 {
			t.Errorf("init container status %+v, want terminated with 0", p.Status.InitContainerStatuses)
		}
		k.waitLog(t, p, "main", "made-by-init")
	})

	t.Run("restartPolicy Never", func(t *testing.T) {
		p := k.waitPod(t, "never", "phase Failed", 2*time.Minute, func(p testutil.KubeletPod) bool { return p.Status.Phase == "Failed" })
		c := p.Container("fail")
		if c == nil || c.State.Terminated == nil || c.State.Terminated.ExitCode != 3 || c.RestartCount != 0 {
			t.Errorf("container status %+v, want terminated with 3 and no restart", c)
		}
		k.waitLog(t, p, "fail", "failing")
	})

	t.Run("restartPolicy OnFailure", func(t *testing.T) {
		p := k.waitPod(t, "onfailure", "phase Succeeded", 2*time.Minute, func(p testutil.KubeletPod) bool { return p.Status.Phase == "Succeeded" })
		if c := p.Container("flaky"); c == nil || c.RestartCount != 2 {
			t.Errorf("container status %+v, want 2 restarts", c)
		}
	})

	t.Run("restartPolicy Always", func(t *testing.T) {
		k.waitPod(t, "always", "3 restarts", 2*time.Minute, func(p testutil.KubeletPod) bool {
			c := p.Container("quick")
			return c != nil && c.RestartCount >= 3
		})
	})

	t.Run("probes", func(t *testing.T) {
		k.waitPod(t, "probes", "web ready through HTTP and TCP probes", 2*time.Minute, func(p testutil.KubeletPod) bool {
			c := p.Container("web")
			return c != nil && c.Ready && c.State.Running != nil
		})
		// The exec liveness probe fails 4 s after each start: the
		// kubelet restarts the container through the runtime.
		p := k.waitPod(t, "probes", "sick restarted by its exec liveness probe", 2*time.Minute, func(p testutil.KubeletPod) bool {
			c := p.Container("sick")
			return c != nil && c.RestartCount >= 1
		})
		if web := p.Container("web"); web.RestartCount != 0 {
			t.Errorf("web restarted %d times; its probes pass", web.RestartCount)
		}
		// And the exec readiness probe turns it ready again after the
		// restart (the file exists for 4 s after each start).
		k.waitPod(t, "probes", "sick ready", 2*time.Minute, func(p testutil.KubeletPod) bool {
			c := p.Container("sick")
			return c != nil && c.Ready
		})
	})

	t.Run("host network", func(t *testing.T) {
		p := k.waitPod(t, "hostnet", "main running", 2*time.Minute, func(p testutil.KubeletPod) bool {
			return p.Running("main")
		})
		host, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		k.waitLog(t, p, "main", "netns="+host)
	})

	t.Run("log rotation", func(t *testing.T) {
		p := k.waitPod(t, "chatty", "talk running", 2*time.Minute, func(p testutil.KubeletPod) bool {
			return p.Running("talk")
		})
		dir := k.ContainerLogDir(p, "talk")
		var rotated []string
		k.waitFor(t, "a rotated log of chatty/talk", 60*time.Second, func() bool {
			rotated, _ = filepath.Glob(filepath.Join(dir, "0.log.*"))
			return len(rotated) > 0
		})
		// After the kubelet's ReopenContainerLog the container keeps
		// logging into a new 0.log.
		cur := filepath.Join(dir, "0.log")
		first := lastLineNumber(cur)
		k.waitFor(t, "0.log to grow after rotation", 30*time.Second, func() bool { return lastLineNumber(cur) > first })
		entries, _ := os.ReadDir(dir)
		if len(entries) > 3 {
			// containerLogMaxFiles 2: the live file, one rotated, and
			// maybe one being compressed.
			t.Errorf("%d files in %s, want the rotation to keep at most 2 (+1 in flight)", len(entries), dir)
		}
	})

	t.Run("removing a manifest tears the pod down", func(t *testing.T) {
		p, _ := k.Pod("basic")
		if err := k.Remove("basic"); err != nil {
			t.Fatal(err)
		}
		var running []testutil.KubeletPod
		k.waitFor(t, "basic to leave /runningpods/", 60*time.Second, func() bool {
			var err error
			running, err = k.RunningPods()
			return err == nil && !slices.ContainsFunc(running, func(r testutil.KubeletPod) bool { return r.Metadata.UID == p.Metadata.UID })
		}, func() string { b, _ := json.Marshal(running); return "running pods: " + string(b) })
		waitFor(t, "no ready sandbox or running container of basic in berth", func() bool {
			sbs, err := d.RT.ListPodSandbox(ctxT(t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
				LabelSelector: map[string]string{"io.kubernetes.pod.uid": p.Metadata.UID}}})
			if err != nil {
				return false
			}
			for _, sb := range sbs.Items {
				if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
					return false
				}
			}
			cs, err := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
				LabelSelector: map[string]string{"io.kubernetes.pod.uid": p.Metadata.UID}}})
			return err == nil && !slices.ContainsFunc(cs.Containers, func(c *runtimeapi.Container) bool {
				return c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
			})
		})
	})

	t.Run("garbage collection of dead containers", func(t *testing.T) {
		// "always" exits every few seconds; the kubelet's container GC
		// (every minute, at most one dead container per pod and
		// container name) removes the older ones from berth.
		p, _ := k.Pod("always")
		list := func() (dead []string) {
			cs, err := d.RT.ListContainers(ctxT(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
				LabelSelector: map[string]string{"io.kubernetes.pod.uid": p.Metadata.UID}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs.Containers {
				if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
					dead = append(dead, c.Id)
				}
			}
			return dead
		}
		seen := list()
		if len(seen) == 0 {
			t.Fatal("no exited container of the always-restarting pod")
		}
		k.waitFor(t, "the kubelet to remove an old dead container", 3*time.Minute, func() bool {
			now := list()
			return slices.ContainsFunc(seen, func(id string) bool { return !slices.Contains(now, id) })
		})
	})

	// Whatever the kubelet logged about the runtime, for the record.
	var notes []string
	for _, line := range strings.Split(k.logs.String(), "\n") {
		if strings.Contains(line, "imagefs") || strings.Contains(line, "runtime") && strings.HasPrefix(line, "E") {
			notes = append(notes, line)
		}
	}
	if len(notes) > 0 {
		t.Logf("the kubelet's runtime-related errors (%d), first ones:\n%s", len(notes), strings.Join(notes[:min(len(notes), 15)], "\n"))
	}
}

// lastLineNumber is the N of the last "line N of …" in a CRI log file.
func lastLineNumber(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, rest, ok := strings.Cut(lines[i], " line "); ok {
			if n, err := strconv.Atoi(strings.Fields(rest)[0]); err == nil {
				return n
			}
		}
	}
	return 0
}
