// Command demo is `make demo`: it serves the offline busybox image from a
// registry on loopback, starts berthd with docker.io mirrored to that
// registry, and drives it through the CRI socket as the kubelet would,
// printing what it does. With --keep it leaves berthd running.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

func main() {
	bin := flag.String("bin", "bin", "directory with berthd")
	dir := flag.String("dir", "/var/tmp/berth-demo", "demo root (berthd's root, state and socket go here)")
	keep := flag.Bool("keep", false, "keep berthd and the registry running until Ctrl-C")
	flag.Parse()

	step("serving the offline busybox image on a loopback registry")
	img, err := testutil.NewBusyboxImage()
	check(err)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.ParseReference(host + "/library/busybox:latest")
	check(gremote.Write(ref, img))
	fmt.Printf("   %s\n", ref)

	step("starting berthd, with docker.io mirrored to that registry")
	os.RemoveAll(*dir)
	check(os.MkdirAll(*dir, 0o700))
	cfgPath := filepath.Join(*dir, "config.toml")
	check(os.WriteFile(cfgPath, []byte(fmt.Sprintf(`root = %q
state = %q
[registry.mirrors]
"docker.io" = ["http://%s"]
[cni]
conf_dir = %q
default_bridge = "berthdemo0"
default_subnet = "10.214.0.0/24"
`, filepath.Join(*dir, "root"), filepath.Join(*dir, "state"), host, filepath.Join(*dir, "cni"))), 0o600))
	logFile, err := os.Create(filepath.Join(*dir, "berthd.log"))
	check(err)
	daemon := exec.Command(filepath.Join(*bin, "berthd"), "--config", cfgPath)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	check(daemon.Start())
	stopDaemon = sync.OnceFunc(func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		syscall.Unmount(filepath.Join(*dir, "state", "netns"), syscall.MNT_DETACH)
		exec.Command("ip", "link", "del", "berthdemo0").Run()
	})
	defer stopDaemon()
	sock := filepath.Join(*dir, "state", "berth.sock")
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	rt, is := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{}, grpc.WaitForReady(true))
	check(err)
	fmt.Printf("   %s %s (CRI %s) on unix://%s, log %s\n", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion, sock, logFile.Name())
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	check(err)
	for _, c := range st.Status.Conditions {
		fmt.Printf("   %-14s %-5v %s\n", c.Type, c.Status, c.Message)
	}

	step("PullImage busybox (normalised to docker.io/library/busybox:latest, fetched from the mirror)")
	start := time.Now()
	pulled, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	check(err)
	fmt.Printf("   image %s in %s\n", pulled.ImageRef, time.Since(start).Round(time.Millisecond))

	step("ListImages")
	list, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	check(err)
	fmt.Printf("   %-40s %-22s %s\n", "REPO TAGS", "IMAGE ID", "SIZE")
	for _, im := range list.Images {
		fmt.Printf("   %-40s %-22s %.1f MB\n", strings.Join(im.RepoTags, ","), im.Id[:19], float64(im.Size)/1e6)
	}
	fs, err := is.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	check(err)
	u := fs.ImageFilesystems[0]
	fmt.Printf("   image fs %s: %.1f MB, %d inodes\n", u.FsId.Mountpoint, float64(u.UsedBytes.Value)/1e6, u.InodesUsed.Value)

	step("RunPodSandbox demo (berth's own infra process: no pause image pulled)")
	logDir := filepath.Join(*dir, "logs")
	pod := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "demo", Namespace: "default", Uid: "demo-uid"},
		Hostname:     "demo",
		LogDirectory: logDir,
		Labels:       map[string]string{"app": "demo"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	start = time.Now()
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	check(err)
	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: pod, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "hello"},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Command:  []string{"sh", "-c", `echo "hello from $(hostname), pid $$, ip $(ip -4 -o addr show eth0 | awk '{print $4}')"; echo "to stderr" >&2; sleep 1000`},
		LogPath:  "hello.log",
	}})
	check(err)
	_, err = rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId})
	check(err)
	fmt.Printf("   pod-to-running: %s\n", time.Since(start).Round(time.Millisecond))
	pst, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId})
	check(err)
	fmt.Printf("   POD %s  %s  ip %s\n", sb.PodSandboxId[:13], pst.Status.State, pst.Status.Network.Ip)
	cst, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr.ContainerId})
	check(err)
	fmt.Printf("   CONTAINER %s  %s  %s  image %s\n", ctr.ContainerId[:13], cst.Status.Metadata.Name, cst.Status.State, cst.Status.ImageRef)

	step("its CRI log (" + cst.Status.LogPath + ")")
	var b []byte
	for i := 0; i < 100; i++ {
		if b, _ = os.ReadFile(cst.Status.LogPath); strings.Count(string(b), "\n") >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fmt.Printf("   %s\n", l)
	}
	res, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr.ContainerId, Cmd: []string{"ps", "-o", "pid,comm"}})
	check(err)
	step("ExecSync ps in the container (PID 1 is the pod's infra process)")
	for _, l := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		fmt.Printf("   %s\n", l)
	}

	if *keep {
		step("berthd keeps running; try: CONTAINER_RUNTIME_ENDPOINT=unix://" + sock + " crictl images. Ctrl-C stops it.")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	step("StopPodSandbox, RemovePodSandbox, stopping berthd")
	_, err = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	check(err)
	_, err = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	check(err)
}

func step(s string) { fmt.Printf("==> %s\n", s) }

// stopDaemon stops berthd once it runs: check calls it too, as os.Exit
// skips main's deferred calls.
var stopDaemon = func() {}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		stopDaemon()
		os.Exit(1)
	}
}
