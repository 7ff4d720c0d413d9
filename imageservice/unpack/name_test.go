package unpack

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestCleanName(t *testing.T) {
	long := strings.Repeat("a/", maxNameLen/2) + "b"
	tests := []struct {
		name    string
		want    string
		wantErr bool
	}{
		{name: "a", want: "a"},
		{name: "a/b/", want: "a/b"},
		{name: "./a//b/./c", want: "a/b/c"},
		{name: "/etc/passwd", want: "etc/passwd"},
		{name: "///etc", want: "etc"},
		{name: "a/../b", want: "b"},
		{name: "a/b/../../c", want: "c"},
		{name: ".", want: ""},
		{name: "./", want: ""},
		{name: "/", want: ""},
		{name: "a/..", want: ""},
		{name: "..a", want: "..a"},
		{name: "a/..b", want: "a/..b"},
		{name: strings.Repeat("x", 255), want: strings.Repeat("x", 255)},
		{name: "", wantErr: true},
		{name: "..", wantErr: true},
		{name: "../", wantErr: true},
		{name: "../a", wantErr: true},
		{name: "a/../../b", wantErr: true},
		{name: "/../etc/passwd", wantErr: true},
		{name: "/a/../../etc", wantErr: true},
		{name: "./../a", wantErr: true},
		{name: "a\x00b", wantErr: true},
		{name: strings.Repeat("x", 256), wantErr: true},
		{name: "a/" + strings.Repeat("x", 256) + "/b", wantErr: true},
		{name: long, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(quoteName(tc.name), func(t *testing.T) {
			got, err := cleanName(tc.name)
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("cleanName(%q) = %q, %v; want ErrInvalidArgument", tc.name, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("cleanName(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		})
	}
}

func TestSplitRel(t *testing.T) {
	tests := []struct{ rel, parent, base string }{
		{"a", "", "a"},
		{"a/b", "a", "b"},
		{"a/b/c", "a/b", "c"},
	}
	for _, tc := range tests {
		if p, b := splitRel(tc.rel); p != tc.parent || b != tc.base {
			t.Errorf("splitRel(%q) = %q, %q; want %q, %q", tc.rel, p, b, tc.parent, tc.base)
		}
	}
}

func TestCheckPAX(t *testing.T) {
	tests := []struct {
		name    string
		records map[string]string
		wantErr bool
	}{
		{name: "nil"},
		{name: "small", records: map[string]string{"SCHILY.xattr.user.a": "b"}},
		{name: "at limit", records: map[string]string{"k": strings.Repeat("v", maxPAXBytes-1)}},
		{name: "over limit", records: map[string]string{"k": strings.Repeat("v", maxPAXBytes)}, wantErr: true},
		{name: "over limit in sum", records: map[string]string{
			"a": strings.Repeat("v", maxPAXBytes/2),
			"b": strings.Repeat("v", maxPAXBytes/2),
		}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPAX(tc.records)
			if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
				t.Fatalf("checkPAX() = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestKeepXattr(t *testing.T) {
	for name, want := range map[string]bool{
		"user.comment":             true,
		"security.capability":      true,
		"trusted.foo":              true,
		"trusted.overlay.opaque":   false,
		"trusted.overlay.redirect": false,
		"user.overlay.opaque":      false,
	} {
		if got := keepXattr(name); got != want {
			t.Errorf("keepXattr(%q) = %v, want %v", name, got, want)
		}
	}
}
