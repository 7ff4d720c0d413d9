package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerdConfig is a private, offline containerd (after
// /work/shared/critest/containerd/config.toml): everything under DIR,
// cgroupfs, oom_score_adj clamped (this host gives root no
// CAP_SYS_RESOURCE), the sandbox image and the pod image from the bench's
// registry through a hosts.toml.
const containerdConfig = `version = 2
root = "DIR/root"
state = "DIR/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "DIR/run/containerd.sock"

[ttrpc]
  address = "DIR/run/containerd.sock.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "DIR/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "SANDBOX"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    netns_mounts_under_state_dir = true
    enable_selinux = false
    restrict_oom_score_adj = true
    systemd_cgroup = false

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "RUNC"
          Root = "DIR/run/runc"
          SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "DIR/cni/net.d"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "DIR/certs.d"
`

// containerdBench runs the pod-to-running sequence against a private
// containerd, with berth's pod network on its own bridge and subnet. It
// returns containerd's version and the times, or a note saying why there
// are none.
func containerdBench(e *podEnv, berthConflist []byte, n int) (version string, times []podTimes, note string) {
	d, pods, stop, note := startContainerd(e, berthConflist)
	if d == nil {
		return "", nil, note
	}
	defer stop()
	ctx := context.Background()
	warm, _, err := pods.start(ctx)
	if err == nil {
		err = pods.remove(ctx, warm.id)
	}
	if err == nil {
		times, err = pods.measure(ctx, n)
	}
	if err != nil {
		fail(fmt.Errorf("containerd (log %s): %w", d.cmd.Stdout.(*os.File).Name(), err))
	}
	return d.version, times, ""
}

// startContainerd starts a private containerd (pause and busybox images
// pulled), with berth's pod network on its own bridge and subnet. With
// containerd or runc missing it returns a nil daemon and a note saying so.
// stop removes its pods and stops it (also at exit).
func startContainerd(e *podEnv, berthConflist []byte) (d *criDaemon, pods *criPods, stop func(), note string) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, nil, nil, "not installed (apt-get install containerd to compare)"
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, nil, nil, "runc not found"
	}
	dir := filepath.Join(e.base, "ctrd")
	for _, d := range []string{"run", "cni/net.d", "cni/ipam", "certs.d/" + e.host} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			fail(err)
		}
	}
	cfg := strings.NewReplacer("DIR", dir, "SANDBOX", e.pause, "RUNC", runc).Replace(containerdConfig)
	must(os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644))
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+e.host, "http://"+e.host)
	must(os.WriteFile(filepath.Join(dir, "certs.d", e.host, "hosts.toml"), []byte(hosts), 0o644))
	conflist, err := containerdConflist(berthConflist, filepath.Join(dir, "cni", "ipam"))
	if err != nil {
		fail(err)
	}
	must(os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-bench.conflist"), conflist, 0o644))

	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		fail(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	d, err = startCRIDaemon(cmd, filepath.Join(dir, "run", "containerd.sock"))
	if err != nil {
		fail(fmt.Errorf("containerd (log %s): %w", logf.Name(), err))
	}
	pods = &criPods{rt: d.rt, image: e.busybox, logDir: filepath.Join(dir, "logs")}
	stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if d.alive() {
			pods.removeAll(ctx)
		}
		d.stop()
		if _, err := os.Stat("/sys/class/net/" + ctrdBridge); err == nil {
			exec.Command("ip", "link", "del", ctrdBridge).Run()
		}
	})
	atExit(stop)

	for _, ref := range []string{e.pause, e.busybox} {
		pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := d.img.PullImage(pctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		cancel()
		if err != nil {
			stop()
			fail(fmt.Errorf("containerd: PullImage %s: %w", ref, err))
		}
	}
	return d, pods, stop, ""
}

// containerdConflist is berth's pod network (the same plugins and
// options) on the containerd bridge and subnet, leases in ipamDir.
func containerdConflist(berth []byte, ipamDir string) ([]byte, error) {
	conf, bridge, ipam, err := podNetwork(berth)
	if err != nil {
		return nil, err
	}
	bridge["bridge"] = ctrdBridge
	ipam["ranges"] = [][]jsonObj{{{"subnet": ctrdSubnet}}}
	ipam["dataDir"] = ipamDir
	conf["name"] = "bench-ctrd"
	return json.MarshalIndent(conf, "", "  ")
}
