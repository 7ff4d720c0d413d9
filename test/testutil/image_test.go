package testutil

import (
	"archive/tar"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestBusyboxImageMediaTypes(t *testing.T) {
	reg := NewRegistry(t)
	for _, tc := range []struct {
		name                    string
		opts                    []ImageOption
		manifest, config, layer types.MediaType
	}{
		{"docker-gzip", nil, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer},
		{"docker-uncompressed", []ImageOption{WithUncompressed()}, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerUncompressedLayer},
		{"oci-gzip", []ImageOption{WithOCI()}, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer},
		{"oci-uncompressed", []ImageOption{WithOCI(), WithUncompressed()}, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCIUncompressedLayer},
		{"zstd", []ImageOption{WithZstd()}, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayerZStd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := BusyboxImage(t, tc.opts...)
			verifyImage(t, img)
			if again := BusyboxImage(t, tc.opts...); mustDigest(t, again) != mustDigest(t, img) {
				t.Errorf("digest not stable: %s then %s", mustDigest(t, img), mustDigest(t, again))
			}

			want := reg.Push(t, "busybox:"+tc.name, img)
			if want != mustDigest(t, img) {
				t.Errorf("Push returned %s, image digest is %s", want, mustDigest(t, img))
			}
			got := pullImage(t, reg, "busybox:"+tc.name)
			verifyImage(t, got)
			if d := mustDigest(t, got); d != want {
				t.Errorf("pulled digest %s, pushed %s", d, want)
			}
			m, err := got.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tc.manifest || m.Config.MediaType != tc.config {
				t.Errorf("manifest media types %s / config %s, want %s / %s", m.MediaType, m.Config.MediaType, tc.manifest, tc.config)
			}
			if len(m.Layers) != BusyboxLayers {
				t.Fatalf("%d layers, want %d", len(m.Layers), BusyboxLayers)
			}
			for i, l := range m.Layers {
				if l.MediaType != tc.layer {
					t.Errorf("layer %d media type %s, want %s", i, l.MediaType, tc.layer)
				}
			}
			checkBusyboxFS(t, flatten(t, got))
		})
	}
}

func checkBusyboxFS(t *testing.T, fs map[string]fsEntry) {
	t.Helper()
	bb := fs["bin/busybox"]
	if bb.hdr == nil || bb.content != string(hostBusybox(t)) || bb.hdr.Mode != 0o755 {
		t.Errorf("bin/busybox missing, wrong or wrong mode")
	}
	if sh := fs["bin/sh"]; sh.hdr == nil || sh.hdr.Typeflag != tar.TypeSymlink || sh.hdr.Linkname != "busybox" {
		t.Errorf("bin/sh is not a symlink to busybox: %+v", sh.hdr)
	}
	for _, a := range BusyboxApplets() {
		if e := fs["bin/"+a]; e.hdr == nil || e.hdr.Typeflag != tar.TypeLink || e.hdr.Linkname != "bin/busybox" {
			t.Errorf("bin/%s is not a hard link to bin/busybox", a)
		}
	}
	if e := fs["usr/bin/env"]; e.hdr == nil || e.hdr.Linkname != "/bin/busybox" {
		t.Errorf("usr/bin/env is not a symlink to /bin/busybox")
	}
	for dir, mode := range map[string]int64{"tmp": 0o1777, "root": 0o700, "etc": 0o755, "dev": 0o755, "proc": 0o755, "sys": 0o755, "home": 0o755, "var": 0o755} {
		if e := fs[dir]; e.hdr == nil || e.hdr.Typeflag != tar.TypeDir || e.hdr.Mode != mode {
			t.Errorf("/%s: want directory mode %o, got %+v", dir, mode, e.hdr)
		}
	}
	if e := fs["etc/passwd"]; !strings.Contains(e.content, "berth:x:1000:1000:berth test user:/home/berth:/bin/sh\n") ||
		!strings.Contains(e.content, "nobody:x:65534:65534:") || !strings.HasPrefix(e.content, "root:x:0:0:") {
		t.Errorf("unexpected /etc/passwd:\n%s", e.content)
	}
	if e := fs["etc/group"]; !strings.Contains(e.content, "wheel:x:10:berth\n") {
		t.Errorf("unexpected /etc/group:\n%s", e.content)
	}
	if e := fs["home/berth"]; e.hdr == nil || e.hdr.Uid != TestUID || e.hdr.Gid != TestGID {
		t.Errorf("/home/berth not owned by %d:%d: %+v", TestUID, TestGID, e.hdr)
	}
	if e := fs[strings.TrimPrefix(HelloPath, "/")]; e.content != HelloText {
		t.Errorf("%s = %q, want %q", HelloPath, e.content, HelloText)
	}
	if e := fs["data/setuid"]; e.hdr == nil || e.hdr.Mode != 0o4755 {
		t.Errorf("data/setuid is not setuid: %+v", e.hdr)
	}
	if e := fs["data/berth-owned.txt"]; e.hdr == nil || e.hdr.Uid != TestUID || e.hdr.Mode != 0o640 {
		t.Errorf("data/berth-owned.txt: %+v", e.hdr)
	}
	for _, e := range fs {
		if !e.hdr.ModTime.Equal(Created) {
			t.Errorf("%s has mtime %v, want %v", e.hdr.Name, e.hdr.ModTime, Created)
			break
		}
	}
}

func TestBusyboxImageConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ImageOption
		want v1.Config
	}{
		{
			name: "default",
			want: v1.Config{
				Cmd:        []string{"sh"},
				Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "BERTH_TEST=1"},
				WorkingDir: "/",
				Labels:     map[string]string{"io.berth.test.image": "busybox"},
			},
		},
		{
			name: "all options",
			opts: []ImageOption{
				WithEntrypoint("/bin/sh", "-c"),
				WithCmd("echo $A"),
				WithEnv("A=1", "PATH=/bin"),
				WithUser("berth"),
				WithWorkdir("/home/berth"),
				WithLabels(map[string]string{"k": "v"}),
				WithStopSignal("SIGINT"),
				WithConfig(func(c *v1.Config) { c.ExposedPorts = map[string]struct{}{"80/tcp": {}} }),
			},
			want: v1.Config{
				Entrypoint:   []string{"/bin/sh", "-c"},
				Cmd:          []string{"echo $A"},
				Env:          []string{"A=1", "PATH=/bin"},
				User:         "berth",
				WorkingDir:   "/home/berth",
				Labels:       map[string]string{"k": "v"},
				StopSignal:   "SIGINT",
				ExposedPorts: map[string]struct{}{"80/tcp": {}},
			},
		},
		{
			name: "no cmd",
			opts: []ImageOption{WithCmd(), WithLabels(nil)},
			want: v1.Config{Env: DefaultEnv(), WorkingDir: "/"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf, err := BusyboxImage(t, tc.opts...).ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cf.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if cf.OS != "linux" || cf.Architecture != HostPlatform().Architecture || !cf.Created.Equal(Created) {
				t.Errorf("config platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
			}
			if len(cf.History) != BusyboxLayers || len(cf.RootFS.DiffIDs) != BusyboxLayers {
				t.Errorf("history %d, diff ids %d, want %d", len(cf.History), len(cf.RootFS.DiffIDs), BusyboxLayers)
			}
		})
	}
}

func TestImageOptionsContradictions(t *testing.T) {
	if _, err := newImageOptions([]ImageOption{WithZstd(), WithUncompressed()}); err == nil {
		t.Error("WithZstd with WithUncompressed: no error")
	}
	o, err := newImageOptions([]ImageOption{WithZstd()})
	if err != nil || !o.oci {
		t.Errorf("WithZstd does not imply OCI: %+v, %v", o, err)
	}
}

func TestXattrFile(t *testing.T) {
	fs := flatten(t, BusyboxImage(t, WithXattrFile()))
	e := fs["data/xattr.txt"]
	if e.hdr == nil || e.hdr.PAXRecords["SCHILY.xattr.user.berth.test"] != "hello" {
		t.Errorf("data/xattr.txt without xattr: %+v", e.hdr)
	}
	if _, ok := flatten(t, BusyboxImage(t))["data/xattr.txt"]; ok {
		t.Error("data/xattr.txt present without WithXattrFile")
	}
}

func TestWhiteoutImage(t *testing.T) {
	reg := NewRegistry(t)
	reg.Push(t, "whiteout:latest", WhiteoutImage(t, WithOCI()))
	img := pullImage(t, reg, "whiteout:latest")
	verifyImage(t, img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != BusyboxLayers+1 {
		t.Fatalf("%d layers, want %d", len(layers), BusyboxLayers+1)
	}
	var names []string
	for _, e := range layerEntries(t, layers[BusyboxLayers]) {
		names = append(names, e.hdr.Name)
	}
	wantNames := []string{"data/", "data/.wh.hello.txt", "data/.wh.olddir", "data/dir/", "data/dir/.wh.gone.txt", "data/opaque/", "data/opaque/.wh..wh..opq", "data/opaque/new.txt"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("whiteout layer (-want +got):\n%s", diff)
	}

	fs := flatten(t, img)
	for _, gone := range []string{"data/hello.txt", "data/olddir", "data/olddir/x.txt", "data/dir/gone.txt", "data/opaque/old.txt"} {
		if _, ok := fs[gone]; ok {
			t.Errorf("%s survived its whiteout", gone)
		}
	}
	if diff := cmp.Diff([]string{"keep.txt"}, children(fs, "data/dir")); diff != "" {
		t.Errorf("/data/dir (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"new.txt"}, children(fs, "data/opaque")); diff != "" {
		t.Errorf("/data/opaque (-want +got):\n%s", diff)
	}
	if fs["data/opaque/new.txt"].content != WhiteoutNewText {
		t.Errorf("new.txt = %q", fs["data/opaque/new.txt"].content)
	}
	if fs["etc/passwd"].hdr == nil {
		t.Error("/etc/passwd lost")
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	reg := NewRegistry(t)
	for _, tc := range []struct {
		name       string
		build      func(testing.TB, ...ImageOption) v1.ImageIndex
		index, img types.MediaType
	}{
		{"oci", MultiPlatformIndex, types.OCIImageIndex, types.OCIManifestSchema1},
		{"docker", MultiPlatformManifestList, types.DockerManifestList, types.DockerManifestSchema2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := tc.build(t)
			if err := validate.Index(idx); err != nil {
				t.Fatal(err)
			}
			want := reg.PushIndex(t, "multi:"+tc.name, idx)
			ref := reg.Ref("multi:" + tc.name)

			desc, err := remote.Get(mustParse(t, ref), reg.RemoteOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != want || desc.MediaType != tc.index {
				t.Errorf("got %s %s, want %s %s", desc.MediaType, desc.Digest, tc.index, want)
			}
			pulled, err := desc.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			im, err := pulled.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var plats []string
			for _, m := range im.Manifests {
				if m.MediaType != tc.img {
					t.Errorf("child %s has media type %s, want %s", m.Digest, m.MediaType, tc.img)
				}
				plats = append(plats, m.Platform.String())
			}
			if diff := cmp.Diff([]string{OtherPlatform().String(), HostPlatform().String()}, plats); diff != "" {
				t.Errorf("platforms (-want +got):\n%s", diff)
			}

			var baseLayers [][]v1.Hash
			for _, p := range []v1.Platform{HostPlatform(), OtherPlatform()} {
				img := pullImage(t, reg, "multi:"+tc.name, remote.WithPlatform(p))
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != p.Architecture || cf.OS != p.OS {
					t.Errorf("selected %s/%s for %s", cf.OS, cf.Architecture, p)
				}
				if got := flatten(t, img)["platform"].content; got != PlatformText(p) {
					t.Errorf("/platform = %q for %s", got, p)
				}
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				var ds []v1.Hash
				for _, l := range m.Layers[:BusyboxLayers] {
					ds = append(ds, l.Digest)
				}
				baseLayers = append(baseLayers, ds)
			}
			if diff := cmp.Diff(baseLayers[0], baseLayers[1]); diff != "" {
				t.Errorf("platform images do not share busybox layers:\n%s", diff)
			}
		})
	}
}

func TestHostileImage(t *testing.T) {
	reg := NewRegistry(t)
	for _, kind := range HostileKinds() {
		t.Run(kind.String(), func(t *testing.T) {
			img := HostileImage(t, kind)
			verifyImage(t, img)
			reg.Push(t, "hostile:"+strings.ToLower(kind.String()), img)
			pulled := pullImage(t, reg, "hostile:"+strings.ToLower(kind.String()))
			layers, err := pulled.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != BusyboxLayers+1 {
				t.Fatalf("%d layers", len(layers))
			}
			top := layers[BusyboxLayers]
			if kind == HugeHeader {
				rc, err := top.Uncompressed()
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				if _, err := tar.NewReader(rc).Next(); !errors.Is(err, tar.ErrFieldTooLong) {
					t.Errorf("reading huge header: %v, want %v", err, tar.ErrFieldTooLong)
				}
				return
			}
			type ent struct {
				Name, Linkname string
				Type           byte
				Major, Minor   int64
				Content        string
			}
			var got []ent
			for _, e := range layerEntries(t, top) {
				got = append(got, ent{e.hdr.Name, e.hdr.Linkname, e.hdr.Typeflag, e.hdr.Devmajor, e.hdr.Devminor, e.content})
			}
			want := map[HostileKind][]ent{
				DotDot:                {{Name: "../../escape", Type: tar.TypeReg, Content: EscapeText}},
				Absolute:              {{Name: "/../../etc/escape", Type: tar.TypeReg, Content: EscapeText}},
				SymlinkEscape:         {{Name: "link", Linkname: "/tmp/outside", Type: tar.TypeSymlink}, {Name: "link/file", Type: tar.TypeReg, Content: EscapeText}},
				SymlinkRelativeEscape: {{Name: "rellink", Linkname: "../../../../../../../../../../tmp/outside", Type: tar.TypeSymlink}, {Name: "rellink/file", Type: tar.TypeReg, Content: EscapeText}},
				HardlinkEscape:        {{Name: "passwd-link", Linkname: "../../etc/passwd", Type: tar.TypeLink}},
				Device:                {{Name: "dev/", Type: tar.TypeDir}, {Name: "dev/evil", Type: tar.TypeChar, Major: 1, Minor: 3}},
			}[kind]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("hostile layer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHugeHeaderRawEntry(t *testing.T) {
	// The hand-written header must be a valid tar header apart from its
	// size: check the checksum by reading a small one with archive/tar.
	b := newTarBuilder()
	b.raw(rawTarEntry("PaxHeaders.0/small", tar.TypeXHeader, []byte(paxRecord("BERTH.padding", "abc"))))
	b.file("small", 0o644, 0, 0, "x")
	data, err := b.bytes()
	if err != nil {
		t.Fatal(err)
	}
	es := readTar(t, strings.NewReader(string(data)))
	if len(es) != 1 || es[0].hdr.Name != "small" || es[0].hdr.PAXRecords["BERTH.padding"] != "abc" {
		t.Errorf("got %+v", es)
	}
	for _, n := range []int{0, 1, 90, 94, 95, 96, 990, 995} {
		got := paxRecord("k", strings.Repeat("v", n))
		length, _, _ := strings.Cut(got, " ")
		if length != strconv.Itoa(len(got)) {
			t.Errorf("paxRecord with %d byte value: length field %s, record is %d bytes", n, length, len(got))
		}
	}
}
