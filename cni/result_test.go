package cni

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestConvertResult(t *testing.T) {
	mustCIDR := func(s string) net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return *n
	}
	// What the bridge plugin returns: the bridge (gateway address), the
	// host veth, then the pod's eth0.
	res := &types100.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*types100.Interface{
			{Name: "berth0"}, {Name: "veth1234"}, {Name: "eth0", Sandbox: "/run/berth/netns/x"},
		},
		IPs: []*types100.IPConfig{
			{Interface: types100.Int(0), Address: mustCIDR("10.89.0.1/16")},
			{Interface: types100.Int(2), Address: mustCIDR("10.89.0.7/16")},
			{Interface: types100.Int(2), Address: mustCIDR("fd00::7/64")},
			{Interface: types100.Int(9), Address: mustCIDR("10.1.1.1/8")},
		},
	}
	got, err := convertResult(res, "/run/berth/netns/x", IfName)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range got.IPs {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"10.89.0.7", "fd00::7"}, ips); diff != "" {
		t.Errorf("IPs (-want +got):\n%s", diff)
	}
	if got.Interface != "eth0" || len(got.Raw) == 0 {
		t.Errorf("result = %+v", got)
	}

	// Plugins that do not say which interface an address is on.
	res = &types100.Result{CNIVersion: "1.0.0", IPs: []*types100.IPConfig{{Address: mustCIDR("10.0.0.2/24")}}}
	if got, err := convertResult(res, "ns", IfName); err != nil || len(got.IPs) != 1 {
		t.Errorf("no interfaces: %+v, %v", got, err)
	}
	var empty types.Result = &types100.Result{CNIVersion: "1.0.0"}
	if _, err := convertResult(empty, "ns", IfName); err == nil {
		t.Error("result without IPs accepted")
	}
}

func TestSetupTeardownWithoutRoot(t *testing.T) {
	ctx := context.Background()
	m, err := NewManager(Options{ConfDir: t.TempDir(), BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir(), Default: DefaultConfig{DataDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(ctx, PodNetwork{ID: "x"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Setup without netns: %v", err)
	}
	if _, err := m.Setup(ctx, PodNetwork{ID: "x", NetNS: "/proc/self/ns/net"}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Setup without config: %v", err)
	}
	if err := m.Teardown(ctx, PodNetwork{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Teardown without ID: %v", err)
	}
	// Nothing cached, no config: nothing to release, and no reason to
	// keep the sandbox from going away.
	if err := m.Teardown(ctx, PodNetwork{ID: "x"}); err != nil {
		t.Errorf("Teardown without config: %v", err)
	}
}
