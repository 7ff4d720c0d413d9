package cni

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// newNetManager is a Manager whose pod network is 10.99.0.0/16 and whose plugin directory holds empty stand-ins, enough to
// render and load configs without root. Nothing here runs a plugin.
func newNetManager(t *testing.T, pools ...SubnetPool) *Manager {
	t.Helper()
	bin := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall"} {
		if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := NewManager(Options{
		ConfDir: t.TempDir(), BinDirs: []string{bin}, CacheDir: t.TempDir(),
		Default:     DefaultConfig{Name: "podnet", Bridge: "btest0", Subnet: "10.99.0.0/16", DataDir: t.TempDir()},
		NetworkDir:  filepath.Join(t.TempDir(), "networks"),
		SubnetPools: pools,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.EnsureDefaultConfig(); err != nil {
		t.Fatal(err)
	}
	return m
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestCreateNetwork(t *testing.T) {
	ctx := context.Background()
	// The first pool's only piece is the pod network's: skipped.
	m := newNetManager(t, SubnetPool{Base: netip.MustParsePrefix("10.99.0.0/16"), Size: 16},
		SubnetPool{Base: netip.MustParsePrefix("10.98.0.0/16"), Size: 16})
	front, err := m.CreateNetwork(ctx, NetworkSpec{Name: "front", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Network{
		ID: front.ID, Name: "front", Driver: "bridge", Subnet: netip.MustParsePrefix("10.98.0.0/16"),
		Gateway: netip.MustParseAddr("10.98.0.1"), Bridge: "br-" + front.ID[:12], Labels: map[string]string{"a": "b"},
		Created: front.Created,
	}
	if diff := cmp.Diff(want, front, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	back, err := m.CreateNetwork(ctx, NetworkSpec{Name: "back.1", Driver: "bridge", Subnet: "10.77.3.9/24", Gateway: "10.77.3.254", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if back.Subnet.String() != "10.77.3.0/24" || back.Gateway.String() != "10.77.3.254" || !back.Internal || back.Bridge == front.Bridge {
		t.Errorf("back = %+v", back)
	}

	// What plugins will read.
	list, err := m.list("back.1")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	if diff := cmp.Diff([]string{"bridge", "firewall"}, types); diff != "" {
		t.Errorf("internal network's plugins (-want +got):\n%s", diff)
	}
	var c pluginConf
	if err := json.Unmarshal(list.Plugins[0].Bytes, &c); err != nil || c.IsGateway || c.Bridge != back.Bridge ||
		len(c.IPAM.Ranges) != 1 || c.IPAM.Ranges[0][0].Subnet != "10.77.3.0/24" {
		t.Errorf("internal bridge config %s: %v", list.Plugins[0].Bytes, err)
	}
	if strings.Contains(string(list.Bytes), `"routes"`) {
		t.Errorf("internal network routes somewhere: %s", list.Bytes)
	}

	all, err := m.ListNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range all {
		names = append(names, n.Name)
	}
	if diff := cmp.Diff([]string{"podnet", "back.1", "front"}, names); diff != "" {
		t.Errorf("ListNetworks (-want +got):\n%s", diff)
	}
	if !all[0].Default || all[0].Subnet.String() != "10.99.0.0/16" || all[0].Bridge != "btest0" || all[0].Gateway.String() != "10.99.0.1" {
		t.Errorf("pod network = %+v", all[0])
	}
	for _, key := range []string{"front", front.ID, front.ID[:6]} {
		if n, err := m.Network(key); err != nil || n.ID != front.ID {
			t.Errorf("Network(%q) = %v, %v", key, n.ID, err)
		}
	}
	if n, err := m.Network("podnet"); err != nil || !n.Default {
		t.Errorf("Network(podnet) = %+v, %v", n, err)
	}
	for _, key := range []string{"nosuch", "../networks/front", "ffffffffffff"} {
		if _, err := m.Network(key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Network(%q) = %v, want ErrNotFound", key, err)
		}
	}

	// Bad input: a clear error and nothing written.
	before := files(t, m.opts.NetworkDir)
	for _, tc := range []struct {
		spec NetworkSpec
		err  error
	}{
		{NetworkSpec{Name: "front"}, errdefs.ErrAlreadyExists},
		{NetworkSpec{Name: "podnet"}, errdefs.ErrAlreadyExists},
		{NetworkSpec{Name: "bridge"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "host"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: ""}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "-x"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: strings.Repeat("n", MaxNetworkName+1)}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Driver: "overlay"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Subnet: "10.98.128.0/24"}, errdefs.ErrConflict},
		{NetworkSpec{Name: "x", Subnet: "10.0.0.0/8"}, errdefs.ErrConflict},
		{NetworkSpec{Name: "x", Subnet: "10.99.7.0/24"}, errdefs.ErrConflict},
		{NetworkSpec{Name: "x", Subnet: "fd00::/64"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Subnet: "10.1.0.0/31"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Subnet: "nonsense"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Subnet: "10.1.0.0/24", Gateway: "10.2.0.1"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Subnet: "10.1.0.0/24", Gateway: "10.1.0.255"}, errdefs.ErrInvalidArgument},
		{NetworkSpec{Name: "x", Gateway: "10.1.0.1"}, errdefs.ErrInvalidArgument},
		// The pools' pieces are the pod network's and front's.
		{NetworkSpec{Name: "x"}, errdefs.ErrFailedPrecondition},
	} {
		if _, err := m.CreateNetwork(ctx, tc.spec); !errors.Is(err, tc.err) {
			t.Errorf("CreateNetwork(%+v) = %v, want %v", tc.spec, err, tc.err)
		}
	}
	if diff := cmp.Diff(before, files(t, m.opts.NetworkDir)); diff != "" {
		t.Errorf("failed creates changed the directory (-before +after):\n%s", diff)
	}

	// Remove: unknown, the pod network, then for real; the name is free again.
	if err := m.RemoveNetwork(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("RemoveNetwork(nosuch) = %v", err)
	}
	if err := m.RemoveNetwork(ctx, "podnet"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("RemoveNetwork(podnet) = %v", err)
	}
	if err := m.RemoveNetwork(ctx, front.ID[:8]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Network("front"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removed network still found: %v", err)
	}
	again, err := m.CreateNetwork(ctx, NetworkSpec{Name: "front"})
	if err != nil || again.ID == front.ID || again.Subnet != front.Subnet {
		t.Errorf("re-created front = %+v, %v", again, err)
	}
}

func TestNetworksWithoutDir(t *testing.T) {
	m, err := NewManager(Options{ConfDir: t.TempDir(), BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateNetwork(context.Background(), NetworkSpec{Name: "x"}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("CreateNetwork without NetworkDir = %v", err)
	}
	if _, err := NewManager(Options{ConfDir: "c", BinDirs: []string{"b"}, CacheDir: "d",
		SubnetPools: []SubnetPool{{Base: netip.MustParsePrefix("10.0.0.0/16"), Size: 8}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("pool with size < base bits: %v", err)
	}
}

func TestAllocateSubnet(t *testing.T) {
	pools := []SubnetPool{
		{Base: netip.MustParsePrefix("172.16.0.0/12"), Size: 16},
		{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 24},
	}
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		used []netip.Prefix
		want string
	}{
		{nil, "172.16.0.0/16"},
		{[]netip.Prefix{p("172.16.0.0/16"), p("172.17.5.0/24")}, "172.18.0.0/16"},
		{[]netip.Prefix{p("172.16.0.0/12")}, "192.168.0.0/24"},
		{[]netip.Prefix{p("172.0.0.0/8"), p("192.168.0.0/23")}, "192.168.2.0/24"},
		{[]netip.Prefix{p("0.0.0.0/1"), p("128.0.0.0/1")}, ""},
	} {
		got, ok := allocateSubnet(pools, tc.used)
		if (tc.want == "") == ok || ok && got.String() != tc.want {
			t.Errorf("allocateSubnet(%v) = %v, %v, want %q", tc.used, got, ok, tc.want)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	const routes = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	0102A8C0	0003	0	0	100	00000000	0	0	0
eth0	0002A8C0	00000000	0001	0	0	100	00FFFFFF	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
`
	got := parseRoutes(bufio.NewScanner(strings.NewReader(routes)))
	want := []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24"), netip.MustParsePrefix("172.17.0.0/16")}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("parseRoutes (-want +got):\n%s", diff)
	}
	if _, err := hostPrefixes(); err != nil {
		t.Errorf("hostPrefixes: %v", err)
	}
}

func TestWithoutDefaultRoutes(t *testing.T) {
	list, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"n","plugins":[
		{"type":"bridge","mtu":1500,"ipam":{"type":"host-local","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.5.0.0/16"},{"dst":"::/0"}]}},
		{"type":"portmap"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := withoutDefaultRoutes(list)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		MTU  int `json:"mtu"`
		IPAM struct {
			Routes []struct{ Dst string } `json:"routes"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(out.Plugins[0].Bytes, &c); err != nil || c.MTU != 1500 || len(c.IPAM.Routes) != 1 || c.IPAM.Routes[0].Dst != "10.5.0.0/16" {
		t.Errorf("stripped config %s: %v", out.Plugins[0].Bytes, err)
	}
	if len(out.Plugins) != 2 || out.Name != "n" {
		t.Errorf("stripped list lost plugins: %+v", out)
	}
	if again, err := withoutDefaultRoutes(out); err != nil || again != out {
		t.Errorf("a list without default routes was rebuilt: %v", err)
	}
}
