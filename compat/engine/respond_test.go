package engine

import (
	"net/http/httptest"
	"testing"
)

func TestBoolValue(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"", false},
		{"force=", false},
		{"force=0", false},
		{"force=no", false},
		{"force=false", false},
		{"force=none", false},
		{"force=False", false}, // docker-py: str(False)
		{"force=%20FALSE%20", false},
		{"force=1", true},
		{"force=true", true},
		{"force=True", true},
		{"force=yes", true},
	} {
		r := httptest.NewRequest("DELETE", "/containers/x?"+tc.query, nil)
		if got := boolValue(r, "force"); got != tc.want {
			t.Errorf("boolValue(%q) = %v, want %v", tc.query, got, tc.want)
		}
	}
}
