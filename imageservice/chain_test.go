package imageservice

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestChainIDs(t *testing.T) {
	a := digest.FromString("a")
	b := digest.FromString("b")
	c := digest.FromString("c")
	got := ChainIDs([]digest.Digest{a, b, c})
	ab := digest.FromString(a.String() + " " + b.String())
	abc := digest.FromString(ab.String() + " " + c.String())
	if got[0] != a || got[1] != ab || got[2] != abc {
		t.Errorf("ChainIDs = %v", got)
	}
	if len(ChainIDs(nil)) != 0 {
		t.Error("ChainIDs(nil) not empty")
	}
}
