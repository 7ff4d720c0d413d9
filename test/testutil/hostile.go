package testutil

import (
	"archive/tar"
	"fmt"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostileKind selects the hostile layer of HostileImage.
type HostileKind int

// Hostile layers. Each is a single tar stream added on top of the busybox
// layers; a safe unpacker must refuse it or confine it to the rootfs, and must
// never create, change or follow anything outside the rootfs.
const (
	// DotDot is a regular file named "../../escape" (content EscapeText).
	// Safe: an error, or nothing written outside the rootfs.
	DotDot HostileKind = iota
	// Absolute is a regular file named "/../../etc/escape" (content
	// EscapeText). Safe: an error, or the file lands at <rootfs>/etc/escape.
	Absolute
	// SymlinkEscape is "link", a symlink to EscapeDir (absolute), followed
	// by "link/file" (content EscapeText). Safe: an error, or the
	// file is created under <rootfs>/tmp/outside (the symlink resolved within
	// the rootfs) and EscapeDir on the host is untouched. Tests should
	// create EscapeDir on the host so that a naive unpacker really writes
	// there instead of failing with ENOENT.
	SymlinkEscape
	// SymlinkRelativeEscape is SymlinkEscape with a relative target:
	// "rellink" -> "../../../../../../../../../../tmp/outside", then
	// "rellink/file".
	SymlinkRelativeEscape
	// HardlinkEscape is "passwd-link", a hard link to "../../etc/passwd".
	// Safe: an error; never a link to a host file.
	HardlinkEscape
	// Device is the character device "dev/evil" 1:3 (/dev/null's numbers),
	// mode 0666. Rootful unpackers may create it; rootless ones must skip or
	// refuse it.
	Device
	// HugeHeader is a regular file "huge" preceded by a PAX extended header
	// of more than 1 MiB (a single record "BERTH.padding"). archive/tar
	// readers fail with tar.ErrFieldTooLong; an unpacker must fail cleanly
	// rather than allocate without bound.
	HugeHeader
)

// EscapeText is the content of the escaping files of hostile layers.
const EscapeText = "escaped from the rootfs\n"

// EscapeDir is the absolute symlink target of SymlinkEscape.
const EscapeDir = "/tmp/outside"

// HostileKinds lists every HostileKind, for table-driven tests.
func HostileKinds() []HostileKind {
	return []HostileKind{DotDot, Absolute, SymlinkEscape, SymlinkRelativeEscape, HardlinkEscape, Device, HugeHeader}
}

func (k HostileKind) String() string {
	switch k {
	case DotDot:
		return "DotDot"
	case Absolute:
		return "Absolute"
	case SymlinkEscape:
		return "SymlinkEscape"
	case SymlinkRelativeEscape:
		return "SymlinkRelativeEscape"
	case HardlinkEscape:
		return "HardlinkEscape"
	case Device:
		return "Device"
	case HugeHeader:
		return "HugeHeader"
	}
	return "HostileKind(" + strconv.Itoa(int(k)) + ")"
}

// HostileImage returns BusyboxImage (with opts) plus one hostile layer of
// kind as its fourth and last layer. The image itself is well formed (its
// digests verify); only the layer's tar content is hostile.
func HostileImage(t testing.TB, kind HostileKind, opts ...ImageOption) v1.Image {
	t.Helper()
	if _, err := hostileLayer(kind); err != nil {
		t.Fatal(err)
	}
	return mustImage(t, opts, HostPlatform(), layerSpec{
		key:       "hostile:" + kind.String(),
		createdBy: "berth testutil: hostile layer " + kind.String(),
		build:     func() ([]byte, error) { return hostileLayer(kind) },
	})
}

func hostileLayer(kind HostileKind) ([]byte, error) {
	b := newTarBuilder()
	switch kind {
	case DotDot:
		b.file("../../escape", 0o644, 0, 0, EscapeText)
	case Absolute:
		b.file("/../../etc/escape", 0o644, 0, 0, EscapeText)
	case SymlinkEscape:
		b.symlink("link", EscapeDir)
		b.file("link/file", 0o644, 0, 0, EscapeText)
	case SymlinkRelativeEscape:
		b.symlink("rellink", strings.Repeat("../", 10)+strings.TrimPrefix(EscapeDir, "/"))
		b.file("rellink/file", 0o644, 0, 0, EscapeText)
	case HardlinkEscape:
		b.hardlink("passwd-link", "../../etc/passwd")
	case Device:
		b.dir("dev", 0o755, 0, 0)
		b.header(&tar.Header{Typeflag: tar.TypeChar, Name: "dev/evil", Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	case HugeHeader:
		// archive/tar refuses to write PAX headers over 1 MiB, so write
		// this one by hand.
		b.raw(rawTarEntry("PaxHeaders.0/huge", tar.TypeXHeader, []byte(paxRecord("BERTH.padding", strings.Repeat("x", 1<<20+512)))))
		b.file("huge", 0o644, 0, 0, "behind a huge header\n")
	default:
		return nil, fmt.Errorf("unknown hostile layer kind %v", kind)
	}
	return b.bytes()
}

// paxRecord formats one PAX extended header record: "%d %s=%s\n", where the
// leading length counts the whole record including its own digits.
func paxRecord(key, value string) string {
	rest := " " + key + "=" + value + "\n"
	n := len(rest)
	for n != len(strconv.Itoa(n))+len(rest) {
		n = len(strconv.Itoa(n)) + len(rest)
	}
	return strconv.Itoa(n) + rest
}

// rawTarEntry returns a ustar header block for name with typeflag and
// data, followed by data padded to the 512-byte block size.
func rawTarEntry(name string, typeflag byte, data []byte) []byte {
	const block = 512
	h := make([]byte, block)
	octal := func(field []byte, v int64) {
		s := strconv.FormatInt(v, 8)
		s = strings.Repeat("0", len(field)-1-len(s)) + s
		copy(field, s) // the last byte stays NUL
	}
	copy(h[0:100], name)
	octal(h[100:108], 0o644)
	octal(h[108:116], 0)
	octal(h[116:124], 0)
	octal(h[124:136], int64(len(data)))
	octal(h[136:148], Created.Unix())
	h[156] = typeflag
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	// The checksum is computed with the checksum field set to spaces.
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))

	out := append(h, data...)
	if pad := len(data) % block; pad != 0 {
		out = append(out, make([]byte, block-pad)...)
	}
	return out
}
