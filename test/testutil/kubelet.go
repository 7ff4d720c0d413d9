package testutil

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Kubelet is a real kubelet (hack/build-kubelet.sh builds one) in
// standalone mode: static pods from a manifest directory, no API server,
// the CRI at a given socket. What it reports is read from its endpoints
// (/pods, /runningpods/), as a user would: on its main port, where
// anonymous requests are allowed (the read-only port has no /runningpods/).
type Kubelet struct {
	// Manifests is its static pod directory, LogDir its pod log directory.
	Manifests, LogDir string
	// NodeName suffixes static pod names: pod "web" is "web-NODENAME".
	NodeName string
	rootDir  string // --root-dir
	url      string // https://127.0.0.1:PORT
	client   *http.Client
	cmd      *exec.Cmd
	done     chan struct{} // closed when the kubelet exited, with err set
	err      error
}

// KubeletOptions configure StartKubelet.
type KubeletOptions struct {
	// Binary is the kubelet; Dir holds its configuration, root directory,
	// manifests and pod logs; Endpoint is the CRI socket's path.
	Binary, Dir, Endpoint string
	// Output receives the kubelet's log (nil: discarded).
	Output io.Writer
	// Extra is appended to the KubeletConfiguration YAML.
	Extra string
}

// KubeletPod is the part of a v1.Pod that berth's tests read, as the
// kubelet's JSON has it.
type KubeletPod struct {
	Metadata struct {
		Name, Namespace, UID string
	} `json:"metadata"`
	Status struct {
		Phase                 string                   `json:"phase"`
		PodIP                 string                   `json:"podIP"`
		ContainerStatuses     []KubeletContainerStatus `json:"containerStatuses"`
		InitContainerStatuses []KubeletContainerStatus `json:"initContainerStatuses"`
	} `json:"status"`
}

// KubeletContainerStatus is a v1.ContainerStatus in part.
type KubeletContainerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int    `json:"restartCount"`
	ContainerID  string `json:"containerID"`
	State        struct {
		Running    *struct{} `json:"running"`
		Terminated *struct {
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"terminated"`
		Waiting *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"waiting"`
	} `json:"state"`
}

// Container is the status of the pod's container called name, or nil.
func (p KubeletPod) Container(name string) *KubeletContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// Running reports whether the pod's container called name runs.
func (p KubeletPod) Running(name string) bool {
	c := p.Container(name)
	return c != nil && c.State.Running != nil
}

// freePort is a TCP port on loopback nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartKubelet runs a kubelet and waits until its port answers.
// The configuration is what a node on cgroupfs needs (cgroup v1 allowed,
// swap tolerated), with a small container log size and a short monitor
// interval so that rotation happens within a test, a short crash-loop
// back-off (KubeletCrashLoopBackOffMax, beta and on since 1.35), manifests
// looked at every second, no eviction and no image GC.
func StartKubelet(o KubeletOptions) (*Kubelet, error) {
	k := &Kubelet{Manifests: filepath.Join(o.Dir, "manifests"), LogDir: filepath.Join(o.Dir, "pods"), NodeName: "berthnode"}
	for _, d := range []string{k.Manifests, k.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var ports [2]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	k.url = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	// The kubelet's serving certificate is self-signed, made at its start.
	k.client = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %q
fileCheckFrequency: 1s
syncFrequency: 5s
containerRuntimeEndpoint: unix://%[2]s
imageServiceEndpoint: unix://%[2]s
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: %q
containerLogMaxSize: 16Ki
containerLogMaxFiles: 2
containerLogMonitorInterval: 3s
crashLoopBackOff:
  maxContainerRestartPeriod: 2s
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
%s`, k.Manifests, o.Endpoint, ports[0], ports[1], k.LogDir, o.Extra)
	cfgPath := filepath.Join(o.Dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	k.rootDir = filepath.Join(o.Dir, "root")
	k.cmd = exec.Command(o.Binary, "--config", cfgPath, "--root-dir", k.rootDir,
		"--hostname-override", k.NodeName, "--v", "2")
	k.cmd.Stdout, k.cmd.Stderr = o.Output, o.Output
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		return nil, err
	}
	k.done = make(chan struct{})
	go func() { k.err = k.cmd.Wait(); close(k.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := k.Pods(); err == nil {
			return k, nil
		}
		if err := k.Exited(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			k.Stop()
			return nil, errors.New("the kubelet's port did not answer within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Exited returns an error once the kubelet has exited, nil while it runs.
func (k *Kubelet) Exited() error {
	select {
	case <-k.done:
		return fmt.Errorf("the kubelet exited: %v", k.err)
	default:
		return nil
	}
}

// Stop ends the kubelet (SIGTERM, SIGKILL after 20 s), removes its links
// in /var/log/containers and unmounts what it mounted under its root
// directory (itself, made rshared, and pod volumes). The pods it ran stay in the runtime, as on a real node.
func (k *Kubelet) Stop() {
	syscall.Kill(k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
	// The kubelet links every container's log from /var/log/containers
	// (a fixed path); those into this kubelet's log directory go with it.
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, k.LogDir+"/") {
			os.Remove(l)
		}
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(k.rootDir))
	// Deepest first; one mount point may be stacked several times.
	slices.SortFunc(mounts, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range mounts {
		unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}

func (k *Kubelet) get(path string, v any) error {
	resp, err := k.client.Get(k.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Pods is the kubelet's /pods: the pods it manages, with their status.
func (k *Kubelet) Pods() ([]KubeletPod, error) {
	var l struct{ Items []KubeletPod }
	err := k.get("/pods", &l)
	return l.Items, err
}

// RunningPods is the kubelet's /runningpods/: the pods it finds in the
// runtime.
func (k *Kubelet) RunningPods() ([]KubeletPod, error) {
	var l struct{ Items []KubeletPod }
	err := k.get("/runningpods/", &l)
	return l.Items, err
}

// Pod is the kubelet's view of the static pod from manifest name.
func (k *Kubelet) Pod(name string) (KubeletPod, bool) {
	pods, err := k.Pods()
	if err != nil {
		return KubeletPod{}, false
	}
	for _, p := range pods {
		if p.Metadata.Name == name+"-"+k.NodeName {
			return p, true
		}
	}
	return KubeletPod{}, false
}

// Drop writes the static pod manifest name.yaml; Remove deletes it.
func (k *Kubelet) Drop(name, manifest string) error {
	return os.WriteFile(filepath.Join(k.Manifests, name+".yaml"), []byte(manifest), 0o644)
}

// Remove deletes the static pod manifest name.yaml.
func (k *Kubelet) Remove(name string) error {
	return os.Remove(filepath.Join(k.Manifests, name+".yaml"))
}

// ContainerLogDir is where the kubelet keeps the logs of a pod's
// container: <podLogsDir>/<ns>_<pod>_<uid>/<container>.
func (k *Kubelet) ContainerLogDir(p KubeletPod, container string) string {
	return filepath.Join(k.LogDir, p.Metadata.Namespace+"_"+p.Metadata.Name+"_"+p.Metadata.UID, container)
}

// StaticPod is a pod manifest in the default namespace with the given
// restart policy and the rest of its spec (indented two spaces).
func StaticPod(name, restartPolicy, spec string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: default
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 2
%s`, name, restartPolicy, spec)
}
