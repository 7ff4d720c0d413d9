package oci

import (
	"slices"
	"testing"
)

// A privileged container gets only the capabilities berthd itself holds:
// runc cannot grant more ("unable to apply caps").
func TestPrivilegedCapsLimitedToOurs(t *testing.T) {
	const capSysResource = 24
	var all uint64 = 1<<41 - 1
	h := Host{CapLastCap: 40, CapMask: all &^ (1 << capSysResource)}
	caps, err := capabilities(Container{Privileged: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(caps, "CAP_SYS_RESOURCE") || !slices.Contains(caps, "CAP_SYS_ADMIN") || len(caps) != 40 {
		t.Errorf("privileged caps without CAP_SYS_RESOURCE held = %d caps: %v", len(caps), caps)
	}
	caps, _ = capabilities(Container{CapAdd: []string{"ALL"}}, h)
	if slices.Contains(caps, "CAP_SYS_RESOURCE") {
		t.Error("ALL added a capability berthd lacks")
	}
	caps, _ = capabilities(Container{Privileged: true}, Host{CapLastCap: 40})
	if len(caps) != 41 {
		t.Errorf("unknown mask: %d caps, want all 41", len(caps))
	}
}
