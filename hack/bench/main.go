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
// memory and CPU with 50 idle pods.
//
// Streaming (stream.go): ExecSync beside raw `runc exec`, streaming Exec,
// attach latency, and port-forward throughput and round trip beside a
// plain loopback TCP copy in this process.
//
// Sections: --only pull,pod,rss,stream (pod includes the limit and
// containerd; --containerd=false leaves containerd out).
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
	"slices"
	"strings"
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
	runs := flag.Int("runs", 5, "pulls to time")
	layerMB := flag.Int("layer-mb", 50, "size of each layer's content in MB")
	work := flag.String("dir", "/var/tmp", "directory on the disk to measure (berthd's root goes under it)")
	only := flag.String("only", "pull,pod,rss,stream", "sections to run, comma-separated: pull, pod, rss, stream")
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
		case "pull", "pod", "rss", "stream":
			sections[s] = true
		case "":
		default:
			fail(fmt.Errorf("--only: unknown section %q (pull, pod, rss, stream)", s))
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
	if sections["pod"] || sections["rss"] || sections["stream"] {
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
	}
}

func pullBench(bin, dir string, runs int, layerSize int64) {
	img, err := testutil.RandomLayersImage(4, layerSize, 0.5, 42)
	if err != nil {
		fail(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.ParseReference(host + "/bench/pull:1")
	if err := gremote.Write(ref, img); err != nil {
		fail(err)
	}
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
	// A private CNI config directory: berthd writes its default network
	// there (with no config at all it would write into /etc/cni/net.d).
	cfg := filepath.Join(dir, "berthd.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "[cni]\nconf_dir = %q\ndefault_bridge = %q\ndefault_subnet = %q\n", filepath.Join(dir, "cni"), berthBridge, berthSubnet), 0o644); err != nil {
		fail(err)
	}
	d := startBerthd(bin, filepath.Join(dir, "berthd"), berthdOpts{config: cfg, logLevel: "warn", stderr: os.Stderr})
	defer d.stop()
	var pulls []time.Duration
	for r := 0; r < runs; r++ {
		dropCaches()
		start := time.Now()
		_, err := d.img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref.String()}})
		if err != nil {
			fail(fmt.Errorf("PullImage: %w", err))
		}
		pulls = append(pulls, time.Since(start))
		if _, err := d.img.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref.String()}}); err != nil {
			fail(err)
		}
	}
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("image pull: 4 gzip layers, %.0f MiB compressed, %.0f MiB unpacked, loopback registry, median of %d\n", mib(compressed), mib(uncompressed), runs)
	fmt.Printf("  %-44s %8s %12s\n", "", "median", "MiB/s out")
	g, p := median(gunzip), median(pulls)
	fmt.Printf("  %-44s %8s %12.0f\n", "limit: gzip -dc of each blob to disk, 1 core", g.Round(time.Millisecond), mib(uncompressed)/g.Seconds())
	fmt.Printf("  %-44s %8s %12.0f\n", "berth: PullImage (fetch+verify+unpack+sync)", p.Round(time.Millisecond), mib(uncompressed)/p.Seconds())
	fmt.Printf("  %-44s %8.2fx   (goal: ≤ 1.30x)\n\n", "berth / limit", p.Seconds()/g.Seconds())
}

type berthd struct {
	cmd    *exec.Cmd
	conn   *grpc.ClientConn
	img    runtimeapi.ImageServiceClient
	rt     runtimeapi.RuntimeServiceClient
	exited chan struct{}
}

type berthdOpts struct {
	config, logLevel string
	stderr           io.Writer
}

// startBerthd starts a private berthd on root and waits until its CRI
// socket answers and its pod network is ready.
func startBerthd(bin, root string, o berthdOpts) *berthd {
	// Searchable by anyone, like /var/lib: pods with user namespaces
	// reach their root file systems as nobody.
	os.MkdirAll(root, 0o711)
	os.Chmod(root, 0o711)
	sock := filepath.Join(root, "state", "berth.sock")
	cmd := exec.Command(filepath.Join(bin, "berthd"), "--config", o.config,
		"--root", filepath.Join(root, "root"), "--state", filepath.Join(root, "state"), "--log-level", o.logLevel)
	cmd.Stderr = o.stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	d := &berthd{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(d.exited) }()
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	d.conn, d.img, d.rt = conn, runtimeapi.NewImageServiceClient(conn), runtimeapi.NewRuntimeServiceClient(conn)
	if _, err := waitCRI(context.Background(), d.rt, d.alive); err != nil {
		d.stop()
		fail(fmt.Errorf("berthd: %w", err))
	}
	return d
}

func (d *berthd) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

func (d *berthd) pid() int { return d.cmd.Process.Pid }

// stop stops berthd (SIGINT) and waits for it. Shims and containers
// outlive it by design: remove the pods first.
func (d *berthd) stop() {
	d.conn.Close()
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
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

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
