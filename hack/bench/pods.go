package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/test/testutil"
)

// podEnv is what the pod sections share: the binaries, a work directory
// and a registry on loopback serving the busybox image and a pause image.
type podEnv struct {
	bin, base string
	srv       *httptest.Server
	host      string // the registry's host:port
	busybox   string // references on the registry
	pause     string
	bbImage   v1.Image
}

func newPodEnv(bin, base string) *podEnv {
	if err := os.MkdirAll(base, 0o755); err != nil {
		fail(err)
	}
	bb, err := testutil.NewBusyboxImage()
	if err != nil {
		fail(fmt.Errorf("busybox image: %w", err))
	}
	pause, err := pauseImage(filepath.Join(bin, "berth-shim"))
	if err != nil {
		fail(fmt.Errorf("pause image: %w", err))
	}
	e := &podEnv{bin: bin, base: base, bbImage: bb}
	e.srv, e.host = serveImages(map[string]v1.Image{"bench/busybox:1": bb, "bench/pause:1": pause})
	e.busybox, e.pause = e.host+"/bench/busybox:1", e.host+"/bench/pause:1"
	return e
}

func (e *podEnv) close() { e.srv.Close() }

// pauseImage is a pod infra image for containerd: berth-shim, which is
// also berth's own pause process, as /pause, run as 65535 like the
// upstream pause image.
func pauseImage(shim string) (v1.Image, error) {
	b, err := os.ReadFile(shim)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	tw.Write(b)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	plat := testutil.HostPlatform()
	cf.OS, cf.Architecture = plat.OS, plat.Architecture
	cf.Config.Entrypoint = []string{"/pause"}
	cf.Config.User = "65535:65535"
	return mutate.ConfigFile(img, cf)
}

// berthPods is a private berthd for pods: its own CNI config directory,
// bridge and subnet, its log (at info: one line per RPC with its duration)
// in a file, the busybox image pulled.
type berthPods struct {
	*criPods
	d       *criDaemon
	root    string
	logPath string
	once    sync.Once
}

func (e *podEnv) startBerth(name string) *berthPods {
	root := filepath.Join(e.base, name)
	if err := os.MkdirAll(root, 0o711); err != nil {
		fail(err)
	}
	logPath := filepath.Join(root, "berthd.log")
	lf, err := os.Create(logPath)
	if err != nil {
		fail(err)
	}
	d := startBerthd(e.bin, root, berthdOpts{logLevel: "info", stderr: lf})
	b := &berthPods{d: d, root: root, logPath: logPath, criPods: &criPods{rt: d.rt, image: e.busybox, logDir: filepath.Join(root, "logs")}}
	atExit(b.stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.busybox}}); err != nil {
		fail(fmt.Errorf("berthd: PullImage: %w", err))
	}
	return b
}

// conflist is the pod network berthd wrote (see startBerthd).
func (b *berthPods) conflist() []byte {
	data, err := os.ReadFile(filepath.Join(b.root, "cni", cni.DefaultConfFile))
	if err != nil {
		fail(fmt.Errorf("berth's pod network: %w", err))
	}
	return data
}

// stop removes every pod and stops berthd.
func (b *berthPods) stop() {
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b.removeAll(ctx)
		b.d.stop()
	})
}

var logLine = regexp.MustCompile(`msg=ok rpc=(\w+) .*duration=(\S+)`)

// rpcDurations reads berthd's log: the durations of the RPCs that
// succeeded, by RPC, from offset on.
func rpcDurations(path string, offset int64) map[string][]time.Duration {
	out := map[string][]time.Duration{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	f.Seek(offset, io.SeekStart)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if d, err := time.ParseDuration(m[2]); err == nil {
			out[m[1]] = append(out[m[1]], d)
		}
	}
	return out
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// podBench is section "pod": pod-to-running latency of berth, of its
// limit and of containerd, one after the other on a quiet machine.
func podBench(e *podEnv, n int, withCtrd bool) {
	ctx := context.Background()
	b := e.startBerth("berthd-pod")
	warm, _, err := b.start(ctx) // one-time costs: the bridge, caches
	if err != nil {
		fail(fmt.Errorf("berth: %w", err))
	}
	if err := b.remove(ctx, warm.id); err != nil {
		fail(fmt.Errorf("berth: %w", err))
	}
	off := fileSize(b.logPath)
	berthT, err := b.measure(ctx, n)
	if err != nil {
		fail(fmt.Errorf("berth: %w", err))
	}
	server := rpcDurations(b.logPath, off)
	// The same pods with a user namespace each: what the namespace, its
	// pinning and the idmapped layers and files cost.
	b.userns = true
	usernsT, err := b.measure(ctx, n)
	if err != nil {
		fail(fmt.Errorf("berth with user namespaces: %w", err))
	}
	b.userns = false
	conflist := b.conflist()
	chain := pluginChain(conflist)
	b.stop()

	limitT, err := limitBench(e, conflist, n)
	if err != nil {
		fail(fmt.Errorf("limit: %w", err))
	}
	var ctrdT []podTimes
	ctrdVersion := ""
	ctrdNote := "left out (--containerd=false)"
	if withCtrd {
		ctrdVersion, ctrdT, ctrdNote = containerdBench(e, conflist, n)
	}

	fmt.Printf("pod to running: RunPodSandbox + CreateContainer + StartContainer until ContainerStatus says RUNNING\n")
	fmt.Printf("  busybox `sleep`, image present; %d pods one at a time after 1 untimed, each stopped and removed untimed.\n", n)
	fmt.Printf("  berth and containerd: berth's default pod network (%s, own bridges); limit: its bridge plugin alone\n", chain)
	fmt.Printf("  %-50s %10s %10s\n", "", "median", "p90")
	lm, lp, lsteps := limitSummary(limitT, chain)
	bm, bp, bsteps := podSummary(berthT)
	fmt.Printf("  %-50s %10s %10s\n", "limit: runc run -d → running, + CNI ADD + DEL", ms(lm), ms(lp))
	noDel := pick(limitT, func(t limitTimes) time.Duration { return t.total - t.del })
	fmt.Printf("  %-50s %10s %10s\n", "  (the same without the CNI DEL)", ms(quantile(noDel, 0.5)), ms(quantile(noDel, 0.9)))
	fmt.Printf("  %-50s %10s %10s\n", "berth", ms(bm), ms(bp))
	um, up, usteps := podSummary(usernsT)
	fmt.Printf("  %-50s %10s %10s\n", "berth, pod with a user namespace", ms(um), ms(up))
	var cm, cp time.Duration
	var csteps string
	if ctrdT != nil {
		cm, cp, csteps = podSummary(ctrdT)
		fmt.Printf("  %-50s %10s %10s\n", ctrdVersion, ms(cm), ms(cp))
	}
	fmt.Printf("  %-50s %9.2fx %9.2fx   (goal < 2×)\n", "berth / limit", bm.Seconds()/lm.Seconds(), bp.Seconds()/lp.Seconds())
	if ctrdT != nil {
		fmt.Printf("  %-50s %9.2fx %9.2fx   (goal < 0.5×)\n", "berth / containerd", bm.Seconds()/cm.Seconds(), bp.Seconds()/cp.Seconds())
	} else {
		fmt.Printf("  containerd: %s\n", ctrdNote)
	}
	fmt.Printf("  where the time goes (medians):\n")
	fmt.Printf("    limit:             %s\n", lsteps)
	fmt.Printf("    berth, client:     %s\n", bsteps)
	fmt.Printf("    berth, userns:     %s\n", usteps)
	fmt.Printf("    berth, berthd log: %s\n", serverSteps(server))
	if ctrdT != nil {
		fmt.Printf("    containerd:        %s\n", csteps)
	}
	fmt.Println()
}

func serverSteps(m map[string][]time.Duration) string {
	var parts []string
	for _, rpc := range []string{"RunPodSandbox", "CreateContainer", "StartContainer", "StopPodSandbox", "RemovePodSandbox"} {
		if ds := m[rpc]; len(ds) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", rpc, ms(quantile(ds, 0.5))))
		}
	}
	if len(parts) == 0 {
		return "no RPC durations in the log"
	}
	return strings.Join(parts, ", ") + " (stop and remove untimed)"
}
