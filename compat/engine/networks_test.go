package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// networkServer is a Server with a cni manager over temporary
// directories (nothing is made on the host until a pod joins), holding
// docker's bridge and a user network "app" on 10.9.0.0/24.
func networkServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	m, err := cni.NewManager(cni.Options{
		ConfDir: filepath.Join(dir, "conf"), BinDirs: []string{filepath.Join(dir, "bin")}, CacheDir: filepath.Join(dir, "cache"),
		NetworkDir: filepath.Join(dir, "networks"), Default: cni.DefaultConfig{DataDir: filepath.Join(dir, "ipam")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{networks: m, log: slog.New(slog.DiscardHandler), cfg: Config{DefaultBridge: "bt-docker0", DefaultSubnet: "10.8.0.0/24"}}
	if err := s.ensureBridge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateNetwork(context.Background(), cni.NetworkSpec{Name: "app", Subnet: "10.9.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDockerNetworksMapOntoCNI(t *testing.T) {
	s := networkServer(t)
	ctx := context.Background()
	all, err := s.dockerNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range all {
		names = append(names, n.Name+"="+n.CNI)
	}
	if want := []string{"bridge=" + bridgeNetwork, "host=", "none=", "app=app"}; !slices.Equal(names, want) {
		t.Errorf("docker networks %v, want %v", names, want)
	}
	br, err := s.findNetwork(ctx, "bridge")
	if err != nil || br.Bridge != "bt-docker0" || br.Subnet != netip.MustParsePrefix("10.8.0.0/24") || br.Options["com.docker.network.bridge.default_bridge"] != "true" {
		t.Errorf("bridge: %+v, %v", br, err)
	}
	// ensureBridge finds it the next time.
	if err := s.ensureBridge(ctx); err != nil {
		t.Error(err)
	}
	for ref, want := range map[string]string{"bridge": bridgeNetwork, "app": "app", br.ID[:10]: bridgeNetwork, "host": "", "none": ""} {
		if got, err := s.cniNetwork(ref); err != nil || got != want {
			t.Errorf("cniNetwork(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := s.cniNetwork("nosuch"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "network nosuch not found" {
		t.Errorf("cniNetwork(nosuch) = %v", err)
	}
	if v := s.networkView(br, nil); v.Name != "bridge" || v.Scope != "local" || len(v.IPAM.Config) != 1 || v.Labels == nil || v.Containers != nil {
		t.Errorf("bridge view: %+v", v)
	}
}

func TestPlanNetwork(t *testing.T) {
	s := networkServer(t)
	ep := func(aliases []string, ip string) *network.NetworkingConfig {
		e := &network.EndpointSettings{Aliases: aliases}
		if ip != "" {
			e.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(ip)}
		}
		return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"app": e, "bridge": e}}
	}
	var plan createPlan
	plan.Network = "app"
	if err := s.planNetwork(&plan, ep([]string{"www", "web"}, "10.9.0.50")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Sandbox.Aliases, []string{"www", "web"}) || plan.Sandbox.IP != "10.9.0.50" {
		t.Errorf("sandbox aliases %v ip %q", plan.Sandbox.Aliases, plan.Sandbox.IP)
	}
	for _, tc := range []struct {
		network string
		nc      *network.NetworkingConfig
		want    string
	}{
		{"app", ep(nil, "10.7.0.5"), "no configured subnet or ip-range contain the IP address 10.7.0.5"},
		{"bridge", ep(nil, "10.8.0.5"), "user specified IP address is supported on user defined networks only"},
		{"bridge", ep([]string{"x"}, ""), "network-scoped alias is supported only for containers in user defined networks"},
		{"nosuch", nil, "network nosuch not found"},
	} {
		var p createPlan
		p.Network = tc.network
		if err := s.planNetwork(&p, tc.nc); err == nil || err.Error() != tc.want {
			t.Errorf("planNetwork on %s: %v, want %q", tc.network, err, tc.want)
		}
	}
}
