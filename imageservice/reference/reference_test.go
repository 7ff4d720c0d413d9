package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const (
	hex1 = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
	dgst = "sha256:" + hex1
)

// parts is Ref flattened for comparison.
type parts struct {
	String, Domain, Path, Repository, Tag, Familiar string
	Digest                                          digest.Digest
}

func partsOf(r Ref) parts {
	return parts{
		String: r.String(), Domain: r.Domain(), Path: r.Path(), Repository: r.Repository(),
		Tag: r.Tag(), Digest: r.Digest(), Familiar: r.Familiar(),
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want parts
	}{
		{"busybox", parts{
			String: "docker.io/library/busybox:latest", Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Tag: "latest", Familiar: "busybox:latest",
		}},
		{"busybox:1.36", parts{
			String: "docker.io/library/busybox:1.36", Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Tag: "1.36", Familiar: "busybox:1.36",
		}},
		{"foo/bar:1", parts{
			String: "docker.io/foo/bar:1", Domain: "docker.io", Path: "foo/bar",
			Repository: "docker.io/foo/bar", Tag: "1", Familiar: "foo/bar:1",
		}},
		{"docker.io/library/busybox:latest", parts{
			String: "docker.io/library/busybox:latest", Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Tag: "latest", Familiar: "busybox:latest",
		}},
		{"index.docker.io/busybox", parts{
			String: "docker.io/library/busybox:latest", Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Tag: "latest", Familiar: "busybox:latest",
		}},
		{"docker.io/library/a/b", parts{ // "library/" is only dropped for one-element names
			String: "docker.io/library/a/b:latest", Domain: "docker.io", Path: "library/a/b",
			Repository: "docker.io/library/a/b", Tag: "latest", Familiar: "library/a/b:latest",
		}},
		{"127.0.0.1:5000/x", parts{
			String: "127.0.0.1:5000/x:latest", Domain: "127.0.0.1:5000", Path: "x",
			Repository: "127.0.0.1:5000/x", Tag: "latest", Familiar: "127.0.0.1:5000/x:latest",
		}},
		{"localhost/x/y:v", parts{
			String: "localhost/x/y:v", Domain: "localhost", Path: "x/y",
			Repository: "localhost/x/y", Tag: "v", Familiar: "localhost/x/y:v",
		}},
		{"[::1]:5000/x", parts{
			String: "[::1]:5000/x:latest", Domain: "[::1]:5000", Path: "x",
			Repository: "[::1]:5000/x", Tag: "latest", Familiar: "[::1]:5000/x:latest",
		}},
		{"registry.k8s.io/pause:3.10", parts{
			String: "registry.k8s.io/pause:3.10", Domain: "registry.k8s.io", Path: "pause",
			Repository: "registry.k8s.io/pause", Tag: "3.10", Familiar: "registry.k8s.io/pause:3.10",
		}},
		{"busybox:Latest", parts{ // tags may have upper case
			String: "docker.io/library/busybox:Latest", Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Tag: "Latest", Familiar: "busybox:Latest",
		}},
		{"busybox@" + dgst, parts{
			String: "docker.io/library/busybox@" + dgst, Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Digest: dgst, Familiar: "busybox@" + dgst,
		}},
		{"busybox:1.36@" + dgst, parts{
			String: "docker.io/library/busybox:1.36@" + dgst, Domain: "docker.io", Path: "library/busybox",
			Repository: "docker.io/library/busybox", Tag: "1.36", Digest: dgst, Familiar: "busybox:1.36@" + dgst,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, partsOf(r)); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"Busybox",
		"foo/Bar",
		"Registry.example/foo", // docker would take the host; berth wants one spelling
		hex1,                   // a bare ID
		dgst,                   // a full ID
		"sha512:" + strings.Repeat("ab", 64),
		"busybox:",
		"busybox@sha256:abc",
		"busy box",
		":tag",
		"/foo",
		"foo/",
		"foo//bar",
		"busybox:" + strings.Repeat("a", 129),
		"-foo",
	} {
		t.Run(in, func(t *testing.T) {
			r, err := Parse(in)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want error", in, r)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalidArgument", in, err)
			}
			if !strings.Contains(err.Error(), `"`+in+`"`) {
				t.Errorf("Parse(%q) error %q does not quote the input", in, err)
			}
		})
	}
}

func TestWithDigest(t *testing.T) {
	r, err := Parse("busybox:1.36")
	if err != nil {
		t.Fatal(err)
	}
	got := r.WithDigest(dgst)
	if want := "docker.io/library/busybox@" + dgst; got.String() != want {
		t.Errorf("WithDigest = %s, want %s", got, want)
	}
	if got.Tag() != "" {
		t.Errorf("WithDigest kept tag %q", got.Tag())
	}
	back, err := Parse(got.String())
	if err != nil || back != got {
		t.Errorf("Parse(%s) = %v, %v; want the same Ref", got, back, err)
	}
}

func TestZero(t *testing.T) {
	var r Ref
	if !r.IsZero() || r.String() != "" || r.Familiar() != "" || r.Repository() != "" {
		t.Errorf("zero Ref: IsZero=%v String=%q Familiar=%q", r.IsZero(), r.String(), r.Familiar())
	}
	p, err := Parse("busybox")
	if err != nil || p.IsZero() {
		t.Errorf("Parse(busybox) = %v, %v", p, err)
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in     string
		want   digest.Digest
		wantOK bool
	}{
		{dgst, dgst, true},
		{hex1, dgst, true},
		{strings.ToUpper(hex1), "", false},
		{hex1[:12], "", false},
		{"sha256:" + hex1[:63], "", false},
		{"sha512:" + hex1, "", false},
		{"busybox", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, ok := ParseID(tc.in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestIsIDPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"7cc", true},
		{"7cc4b5aefd1d", true},
		{hex1, true},
		{dgst, true},
		{"sha256:7cc4", true},
		{"7c", false},
		{"sha256:7c", false},
		{hex1 + "0", false},
		{"7CC4", false},
		{"busybox", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := IsIDPrefix(tc.in); got != tc.want {
			t.Errorf("IsIDPrefix(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"busybox", "foo/bar:1", "127.0.0.1:5000/x", "localhost/x", "[::1]:5000/x:y",
		"busybox@" + dgst, "busybox:1@" + dgst, "index.docker.io/x", "Busybox", hex1, dgst,
		"a/b/c/d:e", "docker.io/library/a/b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidArgument", s, err)
			}
			return
		}
		if r.IsZero() {
			t.Fatalf("Parse(%q) returned the zero Ref", s)
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %s, which does not re-parse: %v", s, r, err)
		}
		if again != r {
			t.Fatalf("Parse(%q) = %s, re-parsed as %s", s, r, again)
		}
		fam, err := Parse(r.Familiar())
		if err != nil || fam != r {
			t.Fatalf("Familiar %q of %s re-parses as %v, %v", r.Familiar(), r, fam, err)
		}
	})
}
