package testutil

import (
	"archive/tar"
	"fmt"
	"runtime"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Contents of the busybox image, for tests to check against.
const (
	// BusyboxLayers is the number of layers of BusyboxImage.
	BusyboxLayers = 3

	// HelloPath holds HelloText in the data layer.
	HelloPath = "/data/hello.txt"
	// HelloText is the content of HelloPath.
	HelloText = "hello from berth\n"

	// TestUser is the unprivileged user of the image, with home /home/berth.
	TestUser = "berth"
	// TestUID and TestGID are TestUser's ids.
	TestUID = 1000
	TestGID = 1000
	// TestSupplementaryGroup is a group (gid 10) listing TestUser as a member
	// in /etc/group, for tests of supplementary group resolution.
	TestSupplementaryGroup    = "wheel"
	TestSupplementaryGroupGID = 10

	// NobodyUID is the uid (and gid) of nobody/nogroup.
	NobodyUID = 65534
)

// applets are the busybox applets linked in /bin (sh is a symlink, the rest
// hard links to /bin/busybox).
var applets = []string{
	"[", "awk", "basename", "cat", "chgrp", "chmod", "chown", "cp", "cut", "date",
	"dd", "df", "dirname", "du", "echo", "env", "expr", "false", "find", "free",
	"grep", "groups", "gunzip", "gzip", "head", "hostname", "id", "ip", "kill",
	"ln", "ls", "mkdir", "mkfifo", "mknod", "mount", "mv", "nc", "nproc",
	"nslookup", "ping", "printf", "ps", "pwd", "readlink", "realpath", "rm",
	"rmdir", "sed", "seq", "sha256sum", "sleep", "sort", "stat", "sync", "tail",
	"tar", "tee", "test", "timeout", "top", "touch", "tr", "true", "umount",
	"uname", "uniq", "unshare", "nsenter", "wc", "wget", "which", "whoami",
	"xargs", "yes",
}

// BusyboxApplets returns the applet names linked in the image's /bin, besides
// busybox itself and sh.
func BusyboxApplets() []string { return slices.Clone(applets) }

const (
	passwdText = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
berth:x:1000:1000:berth test user:/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`
	groupText = `root:x:0:
daemon:x:1:
wheel:x:10:berth
berth:x:1000:
nogroup:x:65534:
`
)

// BusyboxImage returns a deterministic single-platform image
// (linux/runtime.GOARCH) built from the host's static busybox, with
// BusyboxLayers layers:
//
//  1. the system layer: /bin/busybox (0755), /bin/sh -> busybox (symlink),
//     BusyboxApplets() in /bin as hard links to /bin/busybox,
//     /usr/bin/env -> /bin/busybox (an absolute symlink), and the directories
//     /dev /etc /home /proc /sys /usr /usr/bin /var (0755), /root (0700),
//     /tmp (1777);
//  2. the users layer: /etc/passwd (root 0, daemon 1, berth 1000:1000 with
//     home /home/berth, nobody 65534), /etc/group (root, daemon, wheel 10 with
//     member berth, berth 1000, nogroup 65534), /home/berth (0755, 1000:1000);
//  3. the data layer: /data/hello.txt (HelloText), /data/link -> hello.txt,
//     /data/hardlink (hard link to /data/hello.txt), /data/setuid (04755,
//     root, a shell script), /data/berth-owned.txt (0640, 1000:1000,
//     "owned by berth\n"), /data/dir/{keep.txt,gone.txt},
//     /data/olddir/x.txt, /data/opaque/old.txt (used by WhiteoutImage),
//     and with WithXattrFile /data/xattr.txt.
//
// The default config has Cmd ["sh"], Env DefaultEnv(), WorkingDir "/",
// Labels DefaultLabels(), no Entrypoint, User or StopSignal; the
// With... config options change it. Media types are Docker schema 2 with
// gzip layers unless WithOCI, WithZstd or WithUncompressed say otherwise.
// It skips t if busybox is missing (see BusyboxPath).
func BusyboxImage(t testing.TB, opts ...ImageOption) v1.Image {
	t.Helper()
	return mustImage(t, opts, HostPlatform())
}

// HostPlatform is linux/runtime.GOARCH, the platform of BusyboxImage.
func HostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// mustImage builds the busybox image for plat with extra layers on top.
func mustImage(t testing.TB, opts []ImageOption, plat v1.Platform, extra ...layerSpec) v1.Image {
	t.Helper()
	bb := BusyboxPath(t)
	o, err := newImageOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	img, err := buildImage(o, plat, append(busyboxLayers(bb, o), extra...))
	if err != nil {
		t.Fatalf("building test image: %v", err)
	}
	return img
}

func busyboxLayers(bbPath string, o imageOptions) []layerSpec {
	data := layerSpec{key: "data", createdBy: "berth testutil: data layer", build: func() ([]byte, error) { return dataLayer(false) }}
	if o.xattr {
		data = layerSpec{key: "data+xattr", createdBy: "berth testutil: data layer with xattr", build: func() ([]byte, error) { return dataLayer(true) }}
	}
	return []layerSpec{
		{key: "system:" + bbPath, createdBy: "berth testutil: busybox system layer", build: func() ([]byte, error) { return systemLayer(bbPath) }},
		{key: "users", createdBy: "berth testutil: users layer", build: usersLayer},
		data,
	}
}

func systemLayer(bbPath string) ([]byte, error) {
	bin, err := busyboxBytes(bbPath)
	if err != nil {
		return nil, err
	}
	b := newTarBuilder()
	b.dir("bin", 0o755, 0, 0)
	b.file("bin/busybox", 0o755, 0, 0, string(bin))
	b.symlink("bin/sh", "busybox")
	for _, a := range applets {
		b.hardlink("bin/"+a, "bin/busybox")
	}
	for _, d := range []string{"dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "var"} {
		b.dir(d, 0o755, 0, 0)
	}
	b.symlink("usr/bin/env", "/bin/busybox")
	b.dir("root", 0o700, 0, 0)
	b.dir("tmp", 0o1777, 0, 0)
	return b.bytes()
}

func usersLayer() ([]byte, error) {
	b := newTarBuilder()
	b.dir("etc", 0o755, 0, 0)
	b.file("etc/group", 0o644, 0, 0, groupText)
	b.file("etc/passwd", 0o644, 0, 0, passwdText)
	b.dir("home", 0o755, 0, 0)
	b.dir("home/berth", 0o755, TestUID, TestGID)
	return b.bytes()
}

func dataLayer(xattr bool) ([]byte, error) {
	b := newTarBuilder()
	b.dir("data", 0o755, 0, 0)
	b.file("data/hello.txt", 0o644, 0, 0, HelloText)
	b.symlink("data/link", "hello.txt")
	b.header(&tar.Header{Typeflag: tar.TypeLink, Name: "data/hardlink", Linkname: "data/hello.txt", Mode: 0o644}, nil)
	b.file("data/setuid", 0o4755, 0, 0, "#!/bin/sh\nid\n")
	b.file("data/berth-owned.txt", 0o640, TestUID, TestGID, "owned by berth\n")
	b.dir("data/dir", 0o755, 0, 0)
	b.file("data/dir/keep.txt", 0o644, 0, 0, "keep\n")
	b.file("data/dir/gone.txt", 0o644, 0, 0, "gone\n")
	b.dir("data/olddir", 0o755, 0, 0)
	b.file("data/olddir/x.txt", 0o644, 0, 0, "x\n")
	b.dir("data/opaque", 0o755, 0, 0)
	b.file("data/opaque/old.txt", 0o644, 0, 0, "old\n")
	if xattr {
		b.header(&tar.Header{
			Typeflag:   tar.TypeReg,
			Name:       "data/xattr.txt",
			Mode:       0o644,
			PAXRecords: map[string]string{"SCHILY.xattr.user.berth.test": "hello"},
			Format:     tar.FormatPAX,
		}, []byte("has an xattr\n"))
	}
	return b.bytes()
}

// buildImage builds layers with the compression of o and assembles them into
// an image for plat.
func buildImage(o imageOptions, plat v1.Platform, layers []layerSpec) (v1.Image, error) {
	c := o.compression()
	mt := layerMediaType(o.oci, c)
	built := make([]historyLayer, 0, len(layers))
	for _, spec := range layers {
		l, err := spec.layer(c, mt)
		if err != nil {
			return nil, err
		}
		built = append(built, historyLayer{layer: l, createdBy: spec.createdBy})
	}
	return assembleImage(o, plat, built)
}

// historyLayer is a built layer and the history entry describing it.
type historyLayer struct {
	layer     v1.Layer
	createdBy string
}

// assembleImage makes an image of layers with the config and manifest media
// types of o, for plat.
func assembleImage(o imageOptions, plat v1.Platform, layers []historyLayer) (v1.Image, error) {
	base := empty.Image
	if o.oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	cfg := &v1.ConfigFile{
		Architecture: plat.Architecture,
		OS:           plat.OS,
		Variant:      plat.Variant,
		OSVersion:    plat.OSVersion,
		Created:      v1.Time{Time: Created},
		Config:       *o.config.DeepCopy(),
		RootFS:       v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(base, cfg)
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:   l.layer,
			History: v1.History{Created: v1.Time{Time: Created}, CreatedBy: l.createdBy},
		})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	// Compute now, so that a broken image fails here and not in a pull.
	if _, err := img.Digest(); err != nil {
		return nil, fmt.Errorf("computing image digest: %w", err)
	}
	return img, nil
}

// NewBusyboxImage is BusyboxImage for programs that are not tests (the
// demo and the benchmarks): it returns an error instead of skipping.
func NewBusyboxImage(opts ...ImageOption) (v1.Image, error) {
	bb, err := busyboxPath()
	if err != nil {
		return nil, err
	}
	o, err := newImageOptions(opts)
	if err != nil {
		return nil, err
	}
	return buildImage(o, HostPlatform(), busyboxLayers(bb, o))
}
