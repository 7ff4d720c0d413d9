package runtime_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/runtimetest"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/test/testutil"
)

// The unit tier of the Manager: the real store and image service (an
// image pulled from a registry in this process), fakes for the shims and
// the mounts. Nothing here needs root.

// The test image's config.
var (
	imageEntrypoint = []string{"/bin/app"}
	imageCmd        = []string{"serve"}
	imageEnv        = []string{"PATH=/bin", "A=1"}
)

const (
	imageWorkdir    = "/srv"
	imageStopSignal = "SIGQUIT"
)

// env is a Manager on fakes and what the tests look at.
type env struct {
	m      *runtime.Manager
	procs  *runtimetest.Processes
	mounts *runtimetest.Mounter
	db     *store.DB
	images *imageservice.Service
	bus    *events.Bus
	opts   runtime.Options
	sb     store.Sandbox
	image  string // the test image's reference
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	res, err := remote.NewResolver(remote.Config{DockerConfig: filepath.Join(root, "none.json")})
	if err != nil {
		t.Fatal(err)
	}
	images, err := imageservice.New(imageservice.Options{Root: filepath.Join(root, "images"), DB: db, Resolver: res, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	reg := testutil.NewRegistry(t)
	reg.Push(t, "app:1", testImage(t))
	ref := reg.Ref("app:1")
	if _, err := images.Pull(context.Background(), ref, imageservice.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	e := &env{
		procs: runtimetest.NewProcesses(), mounts: runtimetest.NewMounter(),
		db: db, images: images, bus: events.NewBus(), image: ref,
		sb: store.Sandbox{
			ID: idgen.New(), Name: "pod", Namespace: "ns", Dir: filepath.Join(root, "pod"),
			NetNS: "/run/berth/netns/test", InfraPid: 4242, CgroupParent: "/berth-test",
			CreatedAt: time.Now().UTC(), ReadyAt: time.Now().UTC(),
		},
	}
	e.opts = runtime.Options{
		DB: db, Images: images, Processes: e.procs, Mounter: e.mounts, Events: e.bus,
		Logger:  slog.New(slog.DiscardHandler),
		Host:    oci.Host{CgroupV2: true, NofileHardLimit: 1 << 20, MinOOMScoreAdj: -1000},
		RootDir: filepath.Join(root, "root"), StateDir: filepath.Join(root, "state"),
	}
	e.m = e.newManager(t)
	return e
}

// newManager opens another Manager on the same store and fakes, as a
// restarted berthd would.
func (e *env) newManager(t *testing.T) *runtime.Manager {
	t.Helper()
	m, err := runtime.NewManager(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// testImage is one layer with /etc/passwd and /etc/group (a user app,
// 1000:1000, also in group extra 2000), owned by whoever runs the test so
// that an unprivileged pull can unpack it.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	uid, gid := os.Getuid(), os.Getgid()
	add := func(name string, mode int64, typ byte, body string) {
		hdr := &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: int64(len(body)), Uid: uid, Gid: gid, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	add("etc/", 0o755, tar.TypeDir, "")
	add("etc/passwd", 0o644, tar.TypeReg, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
	add("etc/group", 0o644, tar.TypeReg, "root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
	add("srv/", 0o755, tar.TypeDir, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env = imageEntrypoint, imageCmd, imageEnv
	cf.Config.WorkingDir, cf.Config.StopSignal = imageWorkdir, imageStopSignal
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// request is a valid CreateRequest for the test image in the env's pod.
func (e *env) request(name string) runtime.CreateRequest {
	return runtime.CreateRequest{Name: name, Image: e.image, Sandbox: e.sb}
}

// create creates a container and fails the test if it cannot.
func (e *env) create(t *testing.T, req runtime.CreateRequest) string {
	t.Helper()
	id, err := e.m.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return id
}

// running creates and starts a container.
func (e *env) running(t *testing.T, name string) string {
	t.Helper()
	id := e.create(t, e.request(name))
	if err := e.m.Start(context.Background(), id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return id
}

func (e *env) get(t *testing.T, id string) store.Container {
	t.Helper()
	c, err := e.m.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return c
}

// awaitEvent waits for an event of kind about id on sub, failing the test
// after a generous deadline (it only bounds a broken test's hang).
func awaitEvent(t *testing.T, sub *events.Subscription, kind events.Kind, id string) {
	t.Helper()
	stop := make(chan struct{})
	timer := time.AfterFunc(30*time.Second, func() { close(stop) })
	defer timer.Stop()
	for {
		evs, err := sub.Next(stop)
		if err != nil {
			t.Fatal(err)
		}
		if evs == nil {
			t.Fatalf("no %s event for %s", kind, id)
		}
		for _, ev := range evs {
			if ev.Kind == kind && ev.ID == id {
				return
			}
		}
	}
}

// assertGone checks that nothing of a container is left: no record, no
// mount, no process, no directory.
func (e *env) assertGone(t *testing.T) {
	t.Helper()
	cs, err := e.m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("records left: %+v", cs)
	}
	if ms := e.mounts.Mounts(); len(ms) != 0 {
		t.Errorf("mounts left: %+v", ms)
	}
	if ids := e.procs.IDs(); len(ids) != 0 {
		t.Errorf("processes left: %v", ids)
	}
	for _, d := range []string{e.opts.RootDir, e.opts.StateDir} {
		ents, err := os.ReadDir(filepath.Join(d, "containers"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("left in %s: %v", d, ents)
		}
	}
}
