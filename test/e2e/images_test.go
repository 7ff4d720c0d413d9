package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

func pull(t *testing.T, d *daemon, name string, auth *runtimeapi.AuthConfig) (string, error) {
	t.Helper()
	resp, err := d.Img.PullImage(ctxT(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}, Auth: auth})
	return resp.GetImageRef(), err
}

func mustPull(t *testing.T, d *daemon, name string) string {
	t.Helper()
	id, err := pull(t, d, name, nil)
	if err != nil {
		t.Fatalf("PullImage %s: %v", name, err)
	}
	return id
}

func imageStatus(t *testing.T, d *daemon, name string, verbose bool) *runtimeapi.ImageStatusResponse {
	t.Helper()
	resp, err := d.Img.ImageStatus(ctxT(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: name}, Verbose: verbose})
	if err != nil {
		t.Fatalf("ImageStatus %s: %v", name, err)
	}
	return resp
}

func listImages(t *testing.T, d *daemon) []*runtimeapi.Image {
	t.Helper()
	resp, err := d.Img.ListImages(ctxT(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Images
}

type verboseInfo struct {
	ImageSpec      v1.ConfigFile `json:"imageSpec"`
	ChainIDs       []string      `json:"chainIDs"`
	SnapshotDirs   []string      `json:"snapshotDirs"`
	ManifestDigest string        `json:"manifestDigest"`
	IndexDigest    string        `json:"indexDigest"`
}

func verbose(t *testing.T, d *daemon, name string) verboseInfo {
	t.Helper()
	var info verboseInfo
	resp := imageStatus(t, d, name, true)
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.Info["info"], err)
	}
	return info
}

func TestRuntimeInfo(t *testing.T) {
	d := newDaemon(t, "")
	v, err := d.RT.Version(ctxT(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "0.1.0" || v.RuntimeApiVersion != "v1" || v.RuntimeName != "berth" {
		t.Errorf("Version = %+v", v)
	}
	rc, err := d.RT.RuntimeConfig(ctxT(t), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("cgroup driver = %v", rc.GetLinux().GetCgroupDriver())
	}
	st, err := d.RT.Status(ctxT(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c := statusCondition(st, runtimeapi.RuntimeReady); c == nil || !c.Status {
		t.Errorf("RuntimeReady = %+v (runc is installed)", c)
	}
	// A CNI directory with only a broken config: berthd writes no default
	// over it, and NetworkReady says why it is not ready.
	brokenDir := t.TempDir()
	os.WriteFile(filepath.Join(brokenDir, "10-broken.conflist"), []byte("{not json"), 0o644)
	d2 := newDaemon(t, fmt.Sprintf("[cni]\nconf_dir = %q\n", brokenDir))
	st, err = d2.RT.Status(ctxT(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c := statusCondition(st, runtimeapi.NetworkReady); c == nil || c.Status || c.Reason == "" || !strings.Contains(c.Message, "no valid network config") {
		t.Errorf("NetworkReady with a broken CNI config = %+v", c)
	}
	if len(st.RuntimeHandlers) < 2 || st.RuntimeHandlers[0].Name != "" {
		t.Errorf("runtime handlers = %v", st.RuntimeHandlers)
	}
	// Not built yet: an honest Unimplemented, never a fake success.
	_, err = d.RT.CheckpointContainer(ctxT(t), &runtimeapi.CheckpointContainerRequest{ContainerId: "x"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("CheckpointContainer = %v, want Unimplemented", err)
	}
}

// statusCondition is the condition of type typ in st, or nil.
func statusCondition(st *runtimeapi.StatusResponse, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetStatus().GetConditions() {
		if c.Type == typ {
			return c
		}
	}
	return nil
}

func TestSecondDaemonRefused(t *testing.T) {
	d := newDaemon(t, "")
	out, err := exec.Command(berthBin(t, "berthd"), "--config", d.Config, "--listen", "unix://"+filepath.Join(t.TempDir(), "x.sock")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another berthd is running") {
		t.Fatalf("second berthd on the same root: err=%v out=%s", err, out)
	}
	// The first one is unharmed.
	if _, err := d.RT.Version(ctxT(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestPullListStatusRemove(t *testing.T) {
	reg := testutil.NewRegistry(t)
	d := newDaemon(t, "")
	for _, tc := range []struct {
		name string
		opts []testutil.ImageOption
	}{
		{"docker-gzip", nil},
		{"oci-gzip", []testutil.ImageOption{testutil.WithOCI()}},
		{"oci-zstd", []testutil.ImageOption{testutil.WithOCI(), testutil.WithZstd()}},
		{"oci-plain", []testutil.ImageOption{testutil.WithOCI(), testutil.WithUncompressed()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := testutil.BusyboxImage(t, append(tc.opts, testutil.WithUser("1000"), testutil.WithLabels(map[string]string{"case": tc.name}))...)
			manifestDigest := reg.Push(t, tc.name+"/busybox:1.0", img)
			cfgName, _ := img.ConfigName()
			name := reg.Ref(tc.name + "/busybox:1.0")
			id := mustPull(t, d, name)
			if id != cfgName.String() {
				t.Fatalf("image ref = %s, want the config digest %s", id, cfgName)
			}
			digestName := reg.Host + "/" + tc.name + "/busybox@" + manifestDigest.String()
			for _, byName := range []string{id, strings.TrimPrefix(id, "sha256:"), name, digestName} {
				st := imageStatus(t, d, byName, false)
				if st.Image == nil || st.Image.Id != id {
					t.Fatalf("ImageStatus(%s) = %v", byName, st.Image)
				}
				if !slices.Equal(st.Image.RepoTags, []string{name}) || !slices.Equal(st.Image.RepoDigests, []string{digestName}) {
					t.Errorf("names = %v / %v", st.Image.RepoTags, st.Image.RepoDigests)
				}
				if st.Image.Uid.GetValue() != 1000 || st.Image.Size == 0 {
					t.Errorf("uid %v size %d", st.Image.Uid, st.Image.Size)
				}
			}
			info := verbose(t, d, name)
			if info.ImageSpec.Config.Labels["case"] != tc.name || len(info.ChainIDs) != 3 || len(info.SnapshotDirs) != 3 {
				t.Errorf("verbose info = %+v", info)
			}
			// The top layer is first; the base layer holds busybox.
			if _, err := os.Stat(filepath.Join(info.SnapshotDirs[2], "bin", "busybox")); err != nil {
				t.Errorf("base layer: %v", err)
			}
			found := false
			for _, im := range listImages(t, d) {
				found = found || im.Id == id
			}
			if !found {
				t.Errorf("ListImages misses %s", id)
			}
			filtered, err := d.Img.ListImages(ctxT(t), &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: name}}})
			if err != nil || len(filtered.Images) != 1 || filtered.Images[0].Id != id {
				t.Errorf("ListImages(filter %s) = %v, %v", name, filtered, err)
			}
			// Pulling by digest adds nothing new and finds the same image.
			if id2 := mustPull(t, d, digestName); id2 != id {
				t.Errorf("pull by digest = %s", id2)
			}
			if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: digestName}}); err != nil {
				t.Fatal(err)
			}
			for _, byName := range []string{id, name, digestName} {
				if st := imageStatus(t, d, byName, false); st.Image != nil {
					t.Errorf("after remove, ImageStatus(%s) = %v", byName, st.Image)
				}
			}
			if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: name}}); err != nil {
				t.Errorf("removing a removed image: %v", err)
			}
		})
	}
	// Everything went with the images: no snapshot directories are left.
	dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "[0-9]*"))
	if len(dirs) != 0 {
		t.Errorf("snapshots left after removing every image: %v", dirs)
	}
}

func TestBadRequests(t *testing.T) {
	reg := testutil.NewRegistry(t)
	d := newDaemon(t, "")
	for _, tc := range []struct {
		image string
		code  codes.Code
	}{
		{"", codes.InvalidArgument},
		{"UPPER/case", codes.InvalidArgument},
		{"bad name with spaces", codes.InvalidArgument},
		{reg.Ref("missing/image:latest"), codes.NotFound},
	} {
		_, err := pull(t, d, tc.image, nil)
		if status.Code(err) != tc.code {
			t.Errorf("PullImage(%q) = %v, want %v", tc.image, err, tc.code)
		}
	}
	if st := imageStatus(t, d, "no-such-image", false); st.Image != nil {
		t.Errorf("ImageStatus of an unknown image = %v", st.Image)
	}
	if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "no-such-image"}}); err != nil {
		t.Errorf("RemoveImage of an unknown image = %v", err)
	}
	if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RemoveImage without an image = %v", err)
	}
	if n := len(listImages(t, d)); n != 0 {
		t.Errorf("bad requests left %d images", n)
	}
}

func TestSharedLayersAndFsInfo(t *testing.T) {
	reg := testutil.NewRegistry(t)
	d := newDaemon(t, "")
	a := testutil.BusyboxImage(t, testutil.WithLabels(map[string]string{"v": "a"}))
	b := testutil.WhiteoutImage(t)
	reg.Push(t, "shared/a:1", a)
	reg.Push(t, "shared/b:1", b)

	fs0 := fsInfo(t, d)
	mustPull(t, d, reg.Ref("shared/a:1"))
	fs1 := fsInfo(t, d)
	mustPull(t, d, reg.Ref("shared/b:1"))
	fs2 := fsInfo(t, d)
	dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "[0-9]*"))
	if len(dirs) != 4 {
		t.Errorf("two images sharing 3 layers made %d snapshots, want 4", len(dirs))
	}
	grewA := fs1.img.UsedBytes.Value - fs0.img.UsedBytes.Value
	grewB := fs2.img.UsedBytes.Value - fs1.img.UsedBytes.Value
	if grewA < 500_000 || grewB >= grewA/4 {
		t.Errorf("image fs grew by %d for a, %d for b (which shares a's busybox layer)", grewA, grewB)
	}
	if fs2.img.InodesUsed.Value <= fs0.img.InodesUsed.Value || fs2.img.FsId.Mountpoint == "" || fs2.ctr == nil {
		t.Errorf("fs info = %+v / %+v", fs2.img, fs2.ctr)
	}
	// Removing a keeps b whole.
	if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref("shared/a:1")}}); err != nil {
		t.Fatal(err)
	}
	info := verbose(t, d, reg.Ref("shared/b:1"))
	for _, dir := range info.SnapshotDirs {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("b's layer went with a: %v", err)
		}
	}
	if fs3 := fsInfo(t, d); fs3.img.UsedBytes.Value >= fs2.img.UsedBytes.Value {
		t.Errorf("removing a freed nothing: %d → %d", fs2.img.UsedBytes.Value, fs3.img.UsedBytes.Value)
	}
}

type fsUsage struct{ img, ctr *runtimeapi.FilesystemUsage }

func fsInfo(t *testing.T, d *daemon) fsUsage {
	t.Helper()
	resp, err := d.Img.ImageFsInfo(ctxT(t), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ImageFilesystems) != 1 || len(resp.ContainerFilesystems) != 1 {
		t.Fatalf("ImageFsInfo = %v", resp)
	}
	return fsUsage{resp.ImageFilesystems[0], resp.ContainerFilesystems[0]}
}

// TestWhiteouts mounts the pulled layers with overlayfs, as a container's
// root file system will be, and checks what the whiteout layer hides.
func TestWhiteouts(t *testing.T) {
	reg := testutil.NewRegistry(t)
	d := newDaemon(t, "")
	reg.Push(t, "wh:1", testutil.WhiteoutImage(t))
	mustPull(t, d, reg.Ref("wh:1"))
	info := verbose(t, d, reg.Ref("wh:1"))
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(info.SnapshotDirs, ":")); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	for _, gone := range []string{"data/hello.txt", "data/olddir", "data/dir/gone.txt", "data/opaque/old.txt"} {
		if _, err := os.Lstat(filepath.Join(mnt, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is visible: %v", gone, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "data/opaque/new.txt")); err != nil || string(b) != testutil.WhiteoutNewText {
		t.Errorf("new.txt = %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(mnt, "data/opaque")); len(ents) != 1 {
		t.Errorf("opaque dir holds %v", ents)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "data/hardlink")); err != nil || string(b) != testutil.HelloText {
		t.Errorf("hardlink = %q, %v", b, err)
	}
	st, err := os.Stat(filepath.Join(mnt, "data/setuid"))
	if err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("setuid bit lost: %v %v", st.Mode(), err)
	}
}

func TestMultiPlatform(t *testing.T) {
	reg := testutil.NewRegistry(t)
	d := newDaemon(t, "")
	for _, tc := range []struct {
		name string
		idx  v1.ImageIndex
	}{
		{"oci-index", testutil.MultiPlatformIndex(t)},
		{"manifest-list", testutil.MultiPlatformManifestList(t)},
	} {
		idxDigest := reg.PushIndex(t, tc.name+":1", tc.idx)
		mustPull(t, d, reg.Ref(tc.name+":1"))
		info := verbose(t, d, reg.Ref(tc.name+":1"))
		if info.ImageSpec.Architecture != runtime.GOARCH || info.IndexDigest != idxDigest.String() {
			t.Errorf("%s: arch %s, index %s (want %s)", tc.name, info.ImageSpec.Architecture, info.IndexDigest, idxDigest)
		}
		st := imageStatus(t, d, reg.Ref(tc.name+":1"), false)
		if want := reg.Host + "/" + tc.name + "@" + idxDigest.String(); !slices.Contains(st.Image.RepoDigests, want) {
			t.Errorf("%s: repo digests %v, want %s (the index)", tc.name, st.Image.RepoDigests, want)
		}
		b, err := os.ReadFile(filepath.Join(info.SnapshotDirs[0], "platform"))
		if err != nil || strings.TrimSpace(string(b)) != strings.TrimSpace(testutil.PlatformText(testutil.HostPlatform())) {
			t.Errorf("%s: /platform = %q, %v", tc.name, b, err)
		}
	}
}

func TestHostileLayersRejected(t *testing.T) {
	reg := testutil.NewRegistry(t)
	d := newDaemon(t, "")
	if err := os.MkdirAll(testutil.EscapeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(testutil.EscapeDir) })
	before, _ := os.ReadDir(testutil.EscapeDir)
	for _, kind := range testutil.HostileKinds() {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			name := reg.Ref(fmt.Sprintf("hostile/%d:1", kind))
			reg.Push(t, fmt.Sprintf("hostile/%d:1", kind), testutil.HostileImage(t, kind))
			_, err := pull(t, d, name, nil)
			if err == nil {
				t.Fatalf("pull of a hostile layer succeeded")
			}
			if !strings.Contains(status.Convert(err).Message(), "layer") {
				t.Errorf("error does not say what was wrong: %v", err)
			}
			if st := imageStatus(t, d, name, false); st.Image != nil {
				t.Errorf("hostile image recorded: %v", st.Image)
			}
		})
	}
	after, _ := os.ReadDir(testutil.EscapeDir)
	if len(after) != len(before) {
		t.Errorf("%s changed: %v", testutil.EscapeDir, after)
	}
	for _, p := range []string{"/etc/escape", filepath.Join(d.Root, "..", "escape"), filepath.Join(d.Root, "snapshots", "escape")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(d.Root, "snapshots", "tmp")); len(tmp) != 0 {
		t.Errorf("failed pulls left %d temporary layers", len(tmp))
	}
}

func TestConcurrentPullsShareDownloads(t *testing.T) {
	reg := testutil.NewRegistry(t, testutil.WithBlobDelay(50*time.Millisecond))
	d := newDaemon(t, "")
	img := testutil.BusyboxImage(t)
	reg.Push(t, "conc:1", img)
	reg.ResetCounters()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = pull(t, d, reg.Ref("conc:1"), nil)
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("pull %d: %s, %v", i, ids[i], errs[i])
		}
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		dg, _ := l.Digest()
		if n := reg.BlobGets(dg); n != 1 {
			t.Errorf("layer %s fetched %d times by 8 concurrent pulls", dg, n)
		}
	}
}

func TestAuth(t *testing.T) {
	reg := testutil.NewRegistry(t, testutil.WithBasicAuth("alice", "s3cret"))
	reg.Push(t, "private:1", testutil.BusyboxImage(t))
	cfgDir := t.TempDir()
	dockerCfg := filepath.Join(cfgDir, "config.json")
	d := newDaemon(t, fmt.Sprintf("[registry]\nconfig_path = %q\n", dockerCfg))

	_, err := pull(t, d, reg.Ref("private:1"), nil)
	if err == nil || !strings.Contains(strings.ToLower(status.Convert(err).Message()), "auth") {
		t.Fatalf("pull without credentials = %v, want an authentication error", err)
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("code = %v, want Unauthenticated", status.Code(err))
	}
	_, err = pull(t, d, reg.Ref("private:1"), &runtimeapi.AuthConfig{Username: "alice", Password: "wrong"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("pull with a wrong password = %v", err)
	}
	if _, err := pull(t, d, reg.Ref("private:1"), &runtimeapi.AuthConfig{Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatalf("pull with the request's credentials: %v", err)
	}
	if _, err := d.Img.RemoveImage(ctxT(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref("private:1")}}); err != nil {
		t.Fatal(err)
	}
	// Credentials from a docker config.json, read at pull time.
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":"YWxpY2U6czNjcmV0"}}}`, reg.Host)
	if err := os.WriteFile(dockerCfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, d, reg.Ref("private:1"), nil); err != nil {
		t.Fatalf("pull with config.json credentials: %v", err)
	}
}

// TestMirror maps docker.io to the loopback registry: "busybox" is
// normalised, fetched from the mirror, and recorded under its docker name.
func TestMirror(t *testing.T) {
	reg := testutil.NewRegistry(t)
	reg.Push(t, "library/busybox:latest", testutil.BusyboxImage(t))
	d := newDaemon(t, fmt.Sprintf("[registry.mirrors]\n\"docker.io\" = [\"http://127.0.0.1:1\", \"http://%s\"]\n", reg.Host))
	id := mustPull(t, d, "busybox")
	st := imageStatus(t, d, "docker.io/library/busybox:latest", false)
	if st.Image == nil || st.Image.Id != id || !slices.Equal(st.Image.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Fatalf("ImageStatus = %v", st.Image)
	}
	if !strings.HasPrefix(st.Image.RepoDigests[0], "docker.io/library/busybox@sha256:") {
		t.Errorf("repo digests = %v", st.Image.RepoDigests)
	}
	if st := imageStatus(t, d, "busybox:latest", false); st.Image == nil {
		t.Errorf("short name not found")
	}
}

// TestKillDuringPull kills berthd with SIGKILL half way through a slow
// pull: after a restart nothing of the image is visible, no temporary
// layer is left, and the next pull completes.
func TestKillDuringPull(t *testing.T) {
	img, err := testutil.RandomLayersImage(3, 4<<20, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	reg := testutil.NewRegistry(t, testutil.WithThrottle(256<<10))
	reg.Push(t, "big:1", img)
	d := newDaemon(t, "")
	done := make(chan error, 1)
	go func() {
		_, err := pull(t, d, reg.Ref("big:1"), nil)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for pullDone(d) < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("pull made no progress\n%s", tail(d.Logs(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Kill()
	<-done
	d.Start()
	if n := len(listImages(t, d)); n != 0 {
		t.Errorf("%d images visible after a killed pull", n)
	}
	if tmp, _ := os.ReadDir(filepath.Join(d.Root, "snapshots", "tmp")); len(tmp) != 0 {
		t.Errorf("temporary layers left after restart: %v", tmp)
	}
	id := mustPull(t, d, reg.Ref("big:1"))
	cfgName, _ := img.ConfigName()
	if id != cfgName.String() {
		t.Errorf("pull after restart = %s", id)
	}
}

// pullDone is the last "done" figure of the debug progress log.
func pullDone(d *daemon) int64 {
	logs := d.Logs()
	i := strings.LastIndex(logs, "pull progress")
	if i < 0 {
		return 0
	}
	var n int64
	if j := strings.Index(logs[i:], "done="); j >= 0 {
		fmt.Sscan(logs[i+j+5:], &n)
	}
	return n
}
