// Command bench prints berth's figures beside the limits they are judged
// against, measured in the same run on the same machine. It needs root and
// the binaries of `make build`. It asserts nothing: it reports.
//
// Image pull: an image of 4 gzip layers of ~50 MB (half random, half
// repetitive) served from a registry on loopback, pulled through berthd's
// CRI socket, beside plain single-threaded gunzip of the same layer blobs
// to files on the same disk.
//
// Pods (pods.go, limit.go, containerd.go, rss.go): pod-to-running latency
// through the CRI beside raw runc plus one CNI ADD/DEL of the same bridge,
// and beside containerd where it is installed; the shims' memory; berthd's
// memory and CPU with 50 idle pods, then its idle CPU with 100 containers
// and the latency of ListContainerStats and ListPodSandboxStats over them
// (stats.go).
//
// Streaming (stream.go): ExecSync beside raw `runc exec`, streaming Exec,
// attach latency, and port-forward throughput and round trip beside a
// plain loopback TCP copy in this process.
//
// Kubelet (kubelet.go): a real kubelet's static pod from manifest to
// running, berth beside containerd where installed (the kubelet from
// hack/build-kubelet.sh; the section says so when it is not built).
//
// Sections: --only pull,pod,rss,stream,kubelet (pod and kubelet include
// containerd; --containerd=false leaves it out).
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
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

func main() {
	bin := flag.String("bin", "bin", "directory with berthd")
	runs := flag.Int("runs", 5, "pulls to time")
	layerMB := flag.Int("layer-mb", 50, "size of each layer's content in MB")
	work := flag.String("dir", "/var/tmp", "directory on the disk to measure (berthd's root goes under it)")
	only := flag.String("only", "pull,pod,rss,stream,kubelet", "sections to run, comma-separated: pull, pod, rss, stream, kubelet")
	kubeletBin := flag.String("kubelet", "/var/tmp/berth-kubelet/kubelet-v1.36.3", "the kubelet binary (bash hack/build-kubelet.sh builds it)")
	kubeletPods := flag.Int("kubelet-pods", 15, "static pods to time through the kubelet, per runtime")
	podRuns := flag.Int("pod-runs", 30, "pods to time (each section of the pod latency)")
	withCtrd := flag.Bool("containerd", true, "compare pod latency with containerd where it is installed")
	rssPods := flag.Int("rss-pods", 50, "idle pods for berthd's memory and CPU")
	streamMiB := flag.Int("stream-mib", 256, "MiB sent through one port-forwarded connection (each run)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fail(fmt.Errorf("bench needs root"))
	}
	sections := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		switch s = strings.TrimSpace(s); s {
		case "pull", "pod", "rss", "stream", "kubelet":
			sections[s] = true
		case "":
		default:
			fail(fmt.Errorf("--only: unknown section %q (pull, pod, rss, stream, kubelet)", s))
		}
	}
	binDir, err := filepath.Abs(*bin)
	if err != nil {
		fail(err)
	}
	cleanupOnSignal()
	defer runCleanups()

	fmt.Printf("berth bench — %s, %d cores, %s/%s, %s\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel())
	if sections["pull"] {
		dir, err := os.MkdirTemp(*work, "berth-bench-")
		if err != nil {
			fail(err)
		}
		atExit(func() { os.RemoveAll(dir) })
		pullBench(binDir, dir, *runs, int64(*layerMB)<<20)
	}
	if sections["pod"] || sections["rss"] || sections["stream"] || sections["kubelet"] {
		// A fixed directory, so that whatever a killed run left is swept
		// by the next one.
		base := filepath.Join(*work, "berth-bench-pods")
		sweep(base)
		atExit(func() { sweep(base) })
		env := newPodEnv(binDir, base)
		atExit(env.close)
		if sections["pod"] {
			podBench(env, *podRuns, *withCtrd)
		}
		if sections["rss"] {
			rssBench(env, *rssPods)
		}
		if sections["stream"] {
			streamBench(env, int64(*streamMiB)<<20)
		}
		if sections["kubelet"] {
			kubeletBench(env, *kubeletBin, *kubeletPods, *withCtrd)
		}
	}
}

func pullBench(bin, dir string, runs int, layerSize int64) {
	img, err := testutil.RandomLayersImage(4, layerSize, 0.5, 42)
	if err != nil {
		fail(err)
	}
	srv, host := serveImages(map[string]v1.Image{"bench/pull:1": img})
	defer srv.Close()
	ref := host + "/bench/pull:1"
	layers, _ := img.Layers()
	var compressed, uncompressed int64
	for _, l := range layers {
		c, _ := l.Size()
		compressed += c
	}

	// The limit: single-threaded gunzip of each blob to a file on the same disk.
	blobDir := filepath.Join(dir, "blobs")
	os.MkdirAll(blobDir, 0o700)
	var blobs []string
	for i, l := range layers {
		rc, _ := l.Compressed()
		p := filepath.Join(blobDir, fmt.Sprintf("%d.gz", i))
		f, _ := os.Create(p)
		io.Copy(f, rc)
		f.Close()
		rc.Close()
		blobs = append(blobs, p)
	}
	var gunzip []time.Duration
	for r := 0; r < runs; r++ {
		dropCaches()
		start := time.Now()
		for i, b := range blobs {
			out, _ := os.Create(filepath.Join(blobDir, fmt.Sprintf("%d.tar", i)))
			cmd := exec.Command("gzip", "-dc", b)
			cmd.Stdout = out
			if err := cmd.Run(); err != nil {
				fail(fmt.Errorf("gunzip: %w", err))
			}
			out.Close()
		}
		gunzip = append(gunzip, time.Since(start))
		uncompressed = 0
		for i := range blobs {
			st, _ := os.Stat(filepath.Join(blobDir, fmt.Sprintf("%d.tar", i)))
			uncompressed += st.Size()
			os.Remove(filepath.Join(blobDir, fmt.Sprintf("%d.tar", i)))
		}
	}

	// berth: PullImage through the CRI socket; RemoveImage (and its GC)
	// between runs, untimed.
	d := startBerthd(bin, filepath.Join(dir, "berthd"), berthdOpts{logLevel: "warn", stderr: os.Stderr})
	atExit(d.stop) // fail exits without running defers
	defer d.stop()
	var pulls []time.Duration
	for r := 0; r < runs; r++ {
		dropCaches()
		start := time.Now()
		_, err := d.img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			fail(fmt.Errorf("PullImage: %w", err))
		}
		pulls = append(pulls, time.Since(start))
		if _, err := d.img.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			fail(err)
		}
	}
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("image pull: 4 gzip layers, %.0f MiB compressed, %.0f MiB unpacked, loopback registry, median of %d\n", mib(compressed), mib(uncompressed), runs)
	fmt.Printf("  %-44s %8s %12s\n", "", "median", "MiB/s out")
	g, p := quantile(gunzip, 0.5), quantile(pulls, 0.5)
	fmt.Printf("  %-44s %8s %12.0f\n", "limit: gzip -dc of each blob to disk, 1 core", g.Round(time.Millisecond), mib(uncompressed)/g.Seconds())
	fmt.Printf("  %-44s %8s %12.0f\n", "berth: PullImage (fetch+verify+unpack+sync)", p.Round(time.Millisecond), mib(uncompressed)/p.Seconds())
	fmt.Printf("  %-44s %8.2fx   (goal: ≤ 1.30x)\n\n", "berth / limit", p.Seconds()/g.Seconds())
}

// serveImages serves imgs, by repository:tag, from a registry on loopback
// and returns it with its host:port.
func serveImages(imgs map[string]v1.Image) (*httptest.Server, string) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	for repoTag, img := range imgs {
		ref, err := name.ParseReference(host + "/" + repoTag)
		if err == nil {
			err = gremote.Write(ref, img)
		}
		if err != nil {
			srv.Close()
			fail(fmt.Errorf("pushing %s: %w", repoTag, err))
		}
	}
	return srv, host
}

// criDaemon is a CRI daemon the bench started (berthd or containerd) and
// a client on its socket.
type criDaemon struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	conn    *grpc.ClientConn
	img     runtimeapi.ImageServiceClient
	rt      runtimeapi.RuntimeServiceClient
	version string // the CRI's runtime name and version
}

// startCRIDaemon starts cmd and waits until its CRI socket answers and its
// pod network is ready.
func startCRIDaemon(cmd *exec.Cmd, sock string) (*criDaemon, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &criDaemon{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(d.exited) }()
	for i := 0; i < 500 && d.alive(); i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cmd.Process.Kill()
		<-d.exited
		return nil, err
	}
	d.conn, d.img, d.rt = conn, runtimeapi.NewImageServiceClient(conn), runtimeapi.NewRuntimeServiceClient(conn)
	if d.version, err = waitCRI(context.Background(), d.rt, d.alive); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *criDaemon) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

func (d *criDaemon) pid() int { return d.cmd.Process.Pid }

// stop stops the daemon (SIGINT, SIGKILL after 15 s) and waits for it;
// once it has, stop does nothing. Shims and containers outlive it by
// design: remove the pods first.
func (d *criDaemon) stop() {
	d.conn.Close()
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

type berthdOpts struct {
	logLevel string
	stderr   io.Writer
}

// startBerthd starts a private berthd on root and waits until its CRI
// socket answers and its pod network is ready. Its config gives it a CNI
// config directory of its own, root/cni, where it writes its default
// network (with no config at all it would write into /etc/cni/net.d), on
// the bench's bridge and subnet.
func startBerthd(bin, root string, o berthdOpts) *criDaemon {
	// Searchable by anyone, like /var/lib: pods with user namespaces
	// reach their root file systems as nobody.
	os.MkdirAll(root, 0o711)
	os.Chmod(root, 0o711)
	cfg := filepath.Join(root, "berthd.toml")
	conf := fmt.Sprintf("[cni]\nconf_dir = %q\ndefault_bridge = %q\ndefault_subnet = %q\n", filepath.Join(root, "cni"), berthBridge, berthSubnet)
	must(os.WriteFile(cfg, []byte(conf), 0o644))
	cmd := exec.Command(filepath.Join(bin, "berthd"), "--config", cfg,
		"--root", filepath.Join(root, "root"), "--state", filepath.Join(root, "state"), "--log-level", o.logLevel)
	cmd.Stderr = o.stderr
	d, err := startCRIDaemon(cmd, filepath.Join(root, "state", "berth.sock"))
	if err != nil {
		fail(fmt.Errorf("berthd: %w", err))
	}
	return d
}

// dropCaches writes back dirty pages so that one run's writes are not
// flushed during the next; the page cache itself is left alone.
func dropCaches() {
	exec.Command("sync").Run()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.Index(l, ":")+1:])
		}
	}
	return "unknown CPU"
}

// fail reports err, cleans up everything the bench created and exits.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	runCleanups()
	os.Exit(1)
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}
