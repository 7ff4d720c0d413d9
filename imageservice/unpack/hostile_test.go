package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// hostileCase is a layer that must be refused without writing outside the
// layer root. outside is the absolute path of a directory beside the root
// holding a file "sentinel"; "../outside" reaches it from the root.
type hostileCase struct {
	name string
	// layer builds the tar.
	layer func(t testing.TB, outside string) []byte
	// wantInErr must appear in the error (the entry name, the reason).
	wantInErr []string
}

func entries(e ...tarEntry) func(testing.TB, string) []byte {
	return func(t testing.TB, _ string) []byte { return makeTar(t, e...) }
}

func hostileCases() []hostileCase {
	long := strings.Repeat("d/", 2100) + "f"
	return []hostileCase{
		// Names.
		{name: "dotdot", layer: entries(reg("../evil", "x", 0o644)), wantInErr: []string{`"../evil"`, "escapes"}},
		{name: "dotdot overwrite sentinel", layer: entries(reg("../outside/sentinel", "x", 0o644)), wantInErr: []string{`"../outside/sentinel"`, "escapes"}},
		{name: "inner dotdot", layer: entries(reg("a/../../evil", "x", 0o644)), wantInErr: []string{`"a/../../evil"`}},
		{name: "absolute dotdot", layer: entries(reg("/../outside/evil", "x", 0o644)), wantInErr: []string{`"/../outside/evil"`}},
		{name: "dotdot dir", layer: entries(dirEntry("../evil/", 0o755)), wantInErr: []string{"escapes"}},
		{name: "dotdot whiteout", layer: entries(reg("../outside/.wh.sentinel", "", 0o644)), wantInErr: []string{"escapes"}},
		{name: "dotdot opaque", layer: entries(reg("../outside/.wh..wh..opq", "", 0o644)), wantInErr: []string{"escapes"}},
		{name: "long name", layer: entries(reg(long, "x", 0o644)), wantInErr: []string{"bytes long"}},
		{name: "long component", layer: entries(reg("a/"+strings.Repeat("x", 256), "x", 0o644)), wantInErr: []string{"component of 256 bytes"}},
		{name: "NUL in PAX path", layer: func(t testing.TB, _ string) []byte {
			return rawPAXTar(t, tar.TypeReg, "path", "a\x00b")
		}, wantInErr: []string{"invalid argument"}},
		{name: "NUL in PAX linkpath", layer: func(t testing.TB, _ string) []byte {
			return rawPAXTar(t, tar.TypeSymlink, "linkpath", "/etc\x00x")
		}, wantInErr: []string{"invalid argument"}},
		{name: "file at root", layer: entries(reg(".", "x", 0o644)), wantInErr: []string{"root must be a directory"}},
		{name: "empty name", layer: entries(reg("", "x", 0o644)), wantInErr: []string{"empty name"}},

		// Parents through symlinks.
		{name: "symlink absolute then file", layer: func(t testing.TB, outside string) []byte {
			return makeTar(t, symlink("a", outside), reg("a/sentinel", "x", 0o644))
		}, wantInErr: []string{`"a/sentinel"`, "symlink"}},
		{name: "symlink relative then file", layer: entries(symlink("a", "../outside"), reg("a/sentinel", "x", 0o644)), wantInErr: []string{`"a/sentinel"`, "symlink"}},
		{name: "symlink far up then file", layer: entries(symlink("a", "../../../../../../.."), reg("a/evil", "x", 0o644)), wantInErr: []string{"symlink"}},
		{name: "symlink to itself dir then file", layer: entries(symlink("a", "."), reg("a/x", "x", 0o644)), wantInErr: []string{"symlink"}},
		{name: "nested symlink then dir", layer: func(t testing.TB, outside string) []byte {
			return makeTar(t, dirEntry("d/", 0o755), symlink("d/l", outside), dirEntry("d/l/sub/", 0o755))
		}, wantInErr: []string{`"d/l/sub/"`, "symlink"}},
		{name: "symlink then deep file", layer: entries(symlink("a", "../outside"), reg("a/new/deep", "x", 0o644)), wantInErr: []string{"symlink"}},
		{name: "symlink then symlink", layer: entries(symlink("a", "../outside"), symlink("a/s", "x")), wantInErr: []string{"symlink"}},
		{name: "symlink then fifo", layer: entries(symlink("a", "../outside"), fifo("a/fifo", 0o644)), wantInErr: []string{"symlink"}},
		{name: "symlink then hard link", layer: entries(reg("f", "x", 0o644), symlink("a", "../outside"), hardlink("a/h", "f")), wantInErr: []string{`"a/h"`, "symlink"}},
		{name: "symlink then whiteout", layer: entries(symlink("a", "../outside"), reg("a/.wh.sentinel", "", 0o644)), wantInErr: []string{`"a/.wh.sentinel"`, "symlink"}},
		{name: "symlink then opaque", layer: entries(symlink("a", "../outside"), reg("a/.wh..wh..opq", "", 0o644)), wantInErr: []string{"symlink"}},

		// Hard links.
		{name: "hard link dotdot", layer: entries(hardlink("h", "../outside/sentinel")), wantInErr: []string{`"h"`, "escapes"}},
		{name: "hard link absolute outside", layer: func(t testing.TB, outside string) []byte {
			return makeTar(t, hardlink("h", outside+"/sentinel"))
		}, wantInErr: []string{`"h"`, "does not exist"}},
		{name: "hard link through symlink", layer: entries(symlink("l", "../outside"), hardlink("h", "l/sentinel")), wantInErr: []string{`"h"`, "symlink"}},
		{name: "hard link through absolute symlink", layer: func(t testing.TB, outside string) []byte {
			return makeTar(t, symlink("l", outside), hardlink("h", "l/sentinel"))
		}, wantInErr: []string{"symlink"}},
		{name: "hard link missing", layer: entries(hardlink("h", "missing")), wantInErr: []string{`"h"`, "does not exist"}},
		{name: "hard link missing parent", layer: entries(hardlink("h", "nodir/missing")), wantInErr: []string{"does not exist"}},
		{name: "hard link to dir", layer: entries(dirEntry("d/", 0o755), hardlink("h", "d")), wantInErr: []string{"directory"}},
		{name: "hard link to root", layer: entries(hardlink("h", "/")), wantInErr: []string{"layer root"}},
		{name: "hard link to itself", layer: entries(reg("h", "x", 0o644), hardlink("h", "h")), wantInErr: []string{"itself"}},
		{name: "hard link to parent of itself", layer: entries(dirEntry("d/", 0o755), reg("d/f", "x", 0o644), hardlink("d", "d/f")), wantInErr: []string{"replaced"}},

		// Devices and other types.
		{name: "char device", layer: entries(tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}), wantInErr: []string{`"dev/null"`, "device nodes are not allowed"}},
		{name: "char device 0/0", layer: entries(tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "wh", Mode: 0o666}}), wantInErr: []string{"device nodes are not allowed"}},
		{name: "block device", layer: entries(tarEntry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Mode: 0o660, Devmajor: 8}}), wantInErr: []string{`"sda"`, "device nodes are not allowed"}},
		{name: "unknown type", layer: entries(tarEntry{hdr: tar.Header{Typeflag: 'V', Name: "vol"}}), wantInErr: []string{"unsupported entry type"}},
		{name: "PAX sparse bomb", layer: func(t testing.TB, _ string) []byte {
			// 64 MiB of holes from a 2 KiB tar.
			return rawPAXTar(t, tar.TypeReg, "GNU.sparse.major", "0", "GNU.sparse.minor", "1",
				"GNU.sparse.name", "bomb", "GNU.sparse.numblocks", "1", "GNU.sparse.map", "0,0", "GNU.sparse.size", "67108864")
		}, wantInErr: []string{`"bomb"`, "sparse files are not allowed"}},
		{name: "GNU sparse", layer: func(t testing.TB, _ string) []byte {
			return append(gnuSparseHeader("sparse", 64<<20), make([]byte, 1024)...)
		}, wantInErr: []string{`"sparse"`, "sparse files are not allowed"}},
		{name: "uid out of range", layer: entries(reg("f", "x", 0o644).owner(1<<40, 0)), wantInErr: []string{"out of range"}},

		// Whiteouts.
		{name: "whiteout of dotdot", layer: entries(reg("a/.wh...", "", 0o644)), wantInErr: []string{"whiteout"}},
		{name: "whiteout of dot", layer: entries(reg(".wh..", "", 0o644)), wantInErr: []string{"whiteout"}},
		{name: "whiteout of nothing", layer: entries(reg("a/.wh.", "", 0o644)), wantInErr: []string{"whiteout"}},
	}
}

// rawPAXTar writes, by hand, a tar of one entry with the PAX records
// key=value pairs, which archive/tar's writer would refuse (a NUL byte in a
// path, sparse maps).
func rawPAXTar(t testing.TB, typeflag byte, keyValues ...string) []byte {
	t.Helper()
	var records string
	for i := 0; i+1 < len(keyValues); i += 2 {
		rec := " " + keyValues[i] + "=" + keyValues[i+1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		records += fmt.Sprint(n) + rec
	}
	var buf bytes.Buffer
	buf.Write(ustarHeader("PaxHeaders/x", tar.TypeXHeader, len(records)))
	buf.WriteString(records)
	buf.Write(make([]byte, (512-len(records)%512)%512))
	buf.Write(ustarHeader("placeholder", typeflag, 0))
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

func ustarHeader(name string, typeflag byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typeflag
	copy(b[257:], "ustar\x0000")
	setChecksum(b)
	return b
}

// gnuSparseHeader is an old GNU sparse header with an empty sparse map: a file
// of realSize bytes of holes and no data.
func gnuSparseHeader(name string, realSize int) []byte {
	b := ustarHeader(name, tar.TypeGNUSparse, 0)
	copy(b[257:], "ustar  \x00")
	copy(b[483:], fmt.Sprintf("%011o\x00", realSize))
	setChecksum(b)
	return b
}

func setChecksum(b []byte) {
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
}

func TestApplyHostile(t *testing.T) {
	for _, walkOnly := range []bool{false, true} {
		for _, tc := range hostileCases() {
			t.Run(fmt.Sprintf("%s/walkOnly=%v", tc.name, walkOnly), func(t *testing.T) {
				l := newLayout(t)
				opts := testOptions()
				opts.walkOnly = walkOnly
				_, err := apply(context.Background(), l.root, bytes.NewReader(tc.layer(t, l.outside)), opts)
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("apply() = %v, want ErrInvalidArgument", err)
				}
				for _, s := range tc.wantInErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				l.checkContained(t)
			})
		}
	}
}

// TestApplyBenign covers layers that look dangerous but are normal and must
// be extracted, still without touching anything outside.
func TestApplyBenign(t *testing.T) {
	tests := []struct {
		name  string
		layer func(t testing.TB, outside string) []byte
		check func(t *testing.T, l layout)
	}{
		{
			name: "absolute names are relative to the root",
			layer: func(t testing.TB, outside string) []byte {
				return makeTar(t, reg(outside+"/sentinel", "x", 0o644))
			},
			check: func(t *testing.T, l layout) { wantType(t, l, l.outside[1:]+"/sentinel", "file") },
		},
		{
			name: "symlink targets are stored as-is",
			layer: func(t testing.TB, outside string) []byte {
				return makeTar(t, symlink("abs", outside+"/sentinel"), symlink("rel", "../outside/sentinel"), symlink("up", "../../../../.."))
			},
			check: func(t *testing.T, l layout) {
				for _, p := range []string{"abs", "rel", "up"} {
					wantType(t, l, p, "symlink")
				}
			},
		},
		{
			name:  "hard link to a symlink links the symlink",
			layer: entries(symlink("l", "../outside/sentinel"), hardlink("h", "l")),
			check: func(t *testing.T, l layout) { wantType(t, l, "h", "symlink") },
		},
		{
			name:  "file replaces a symlink",
			layer: entries(symlink("a", "../outside/sentinel"), reg("a", "mine", 0o644)),
			check: func(t *testing.T, l layout) { wantType(t, l, "a", "file") },
		},
		{
			name:  "dir replaces a symlink",
			layer: entries(symlink("a", "../outside"), dirEntry("a/", 0o755), reg("a/sentinel", "mine", 0o644)),
			check: func(t *testing.T, l layout) { wantType(t, l, "a/sentinel", "file") },
		},
		{
			name:  "hard link replaces a symlink",
			layer: entries(reg("f", "x", 0o644), symlink("a", "../outside/sentinel"), hardlink("a", "f")),
			check: func(t *testing.T, l layout) { wantType(t, l, "a", "file") },
		},
		{
			name:  "dotdot that stays inside",
			layer: entries(reg("a/../b", "x", 0o644)),
			check: func(t *testing.T, l layout) { wantType(t, l, "b", "file") },
		},
	}
	for _, walkOnly := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/walkOnly=%v", tc.name, walkOnly), func(t *testing.T) {
				l := newLayout(t)
				opts := testOptions()
				opts.walkOnly = walkOnly
				if _, err := apply(context.Background(), l.root, bytes.NewReader(tc.layer(t, l.outside)), opts); err != nil {
					t.Fatalf("apply: %v", err)
				}
				tc.check(t, l)
				l.checkContained(t)
			})
		}
	}
}

func wantType(t *testing.T, l layout, rel, typ string) {
	t.Helper()
	n, ok := snapshot(t, l.root)[rel]
	if !ok || n.Type != typ {
		t.Errorf("%s: got %+v, want a %s", rel, n, typ)
	}
}
