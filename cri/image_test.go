package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestImageUser(t *testing.T) {
	for _, tc := range []struct {
		user string
		uid  int64
		name string
	}{
		{"", -1, ""},
		{"1000", 1000, ""},
		{"1000:1000", 1000, ""},
		{"www-data", -1, "www-data"},
		{"www-data:1004", -1, "www-data"},
		{"0", 0, ""},
	} {
		uid, name := imageUser(tc.user)
		got := int64(-1)
		if uid != nil {
			got = *uid
		}
		if got != tc.uid || name != tc.name {
			t.Errorf("imageUser(%q) = %d %q, want %d %q", tc.user, got, name, tc.uid, tc.name)
		}
	}
}

func TestToAuth(t *testing.T) {
	if toAuth(nil) != nil || toAuth(&runtimeapi.AuthConfig{ServerAddress: "x"}) != nil {
		t.Error("empty auth must mean none, so that config.json credentials apply")
	}
	if a := toAuth(&runtimeapi.AuthConfig{Username: "u", Password: "p"}); a == nil || a.Username != "u" || a.Password != "p" {
		t.Errorf("toAuth = %+v", a)
	}
}
