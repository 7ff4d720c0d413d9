package cnitest

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestNetwork(t *testing.T) {
	ctx := context.Background()
	var n Network
	pod := cni.PodNetwork{ID: "a", NetNS: "/run/berth/netns/a"}
	res, err := n.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.IPs[0].String(); got != "10.89.0.1" {
		t.Errorf("IP = %s", got)
	}
	if _, err := n.Setup(ctx, pod); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Setup: %v", err)
	}
	res, _ = n.Setup(ctx, cni.PodNetwork{ID: "b", NetNS: "/x"})
	if got := res.IPs[0].String(); got != "10.89.0.2" {
		t.Errorf("second IP = %s", got)
	}
	if a, ok := n.Attached("a"); !ok || a.IP.String() != "10.89.0.1" {
		t.Errorf("Attached(a) = %v, %v", a, ok)
	}

	boom := errors.New("boom")
	n.SetErrors(nil, boom, boom)
	if err := n.Teardown(ctx, pod); !errors.Is(err, boom) {
		t.Errorf("Teardown with TeardownErr: %v", err)
	}
	if err := n.Ready(); !errors.Is(err, boom) {
		t.Errorf("Ready: %v", err)
	}
	if n.Len() != 2 {
		t.Errorf("failed Teardown detached: Len = %d", n.Len())
	}
	n.SetErrors(nil, nil, nil)
	for _, id := range []string{"a", "b", "unknown"} {
		if err := n.Teardown(ctx, cni.PodNetwork{ID: id}); err != nil {
			t.Errorf("Teardown(%s): %v", id, err)
		}
	}
	if n.Len() != 0 {
		t.Errorf("Len = %d after Teardown", n.Len())
	}
	n.SetupErr = boom
	if _, err := n.Setup(ctx, pod); !errors.Is(err, boom) {
		t.Errorf("Setup with SetupErr: %v", err)
	}
	setups, downs := n.Calls()
	if len(setups) != 4 || len(downs) != 4 {
		t.Errorf("calls = %d setups, %d teardowns", len(setups), len(downs))
	}
}
