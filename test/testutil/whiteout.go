package testutil

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// WhiteoutNewText is the content of /data/opaque/new.txt in WhiteoutImage.
const WhiteoutNewText = "new\n"

// WhiteoutImage returns BusyboxImage with a fourth layer using OCI whiteouts
// (https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts).
// The layer holds, in this order:
//
//	data/                        directory
//	data/.wh.hello.txt           deletes /data/hello.txt
//	data/.wh.olddir              deletes the directory /data/olddir and x.txt in it
//	data/dir/                    directory
//	data/dir/.wh.gone.txt        deletes /data/dir/gone.txt
//	data/opaque/                 directory
//	data/opaque/.wh..wh..opq     hides everything lower layers put in /data/opaque
//	data/opaque/new.txt          WhiteoutNewText
//
// After unpacking (or overlay-mounting) the image a test can verify:
// /data/hello.txt and /data/olddir do not exist; /data/link is a dangling
// symlink; /data/hardlink still holds HelloText (a hard link is a name of its
// own); /data/dir holds exactly keep.txt; /data/opaque holds exactly
// new.txt; no name starting with ".wh." is visible anywhere; the rest of the
// busybox image (/etc/passwd, /bin/sh, ...) is intact.
func WhiteoutImage(t testing.TB, opts ...ImageOption) v1.Image {
	t.Helper()
	return mustImage(t, opts, HostPlatform(), layerSpec{
		key:       "whiteout",
		createdBy: "berth testutil: whiteout layer",
		build:     whiteoutLayer,
	})
}

func whiteoutLayer() ([]byte, error) {
	b := newTarBuilder()
	b.dir("data", 0o755, 0, 0)
	b.file("data/.wh.hello.txt", 0o644, 0, 0, "")
	b.file("data/.wh.olddir", 0o644, 0, 0, "")
	b.dir("data/dir", 0o755, 0, 0)
	b.file("data/dir/.wh.gone.txt", 0o644, 0, 0, "")
	b.dir("data/opaque", 0o755, 0, 0)
	b.file("data/opaque/.wh..wh..opq", 0o644, 0, 0, "")
	b.file("data/opaque/new.txt", 0o644, 0, 0, WhiteoutNewText)
	return b.bytes()
}
