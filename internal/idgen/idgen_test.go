package idgen

import (
	"regexp"
	"testing"
)

func TestNew(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("New() = %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
	if h := Hex(6); len(h) != 12 {
		t.Errorf("Hex(6) = %q", h)
	}
}
