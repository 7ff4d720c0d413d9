package cni

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/netns"
	"github.com/berth-runtime/berth/test/testutil"
)

const systemBinDir = "/usr/lib/cni"

// env is one test's private network: its own bridge, /24, config, cache,
// lease and netns directories. It never touches berth0, 10.89/16 or 10.88/16.
type env struct {
	m       *Manager
	name    string // network name, also host-local's lease subdirectory
	bridge  string
	subnet  netip.Prefix
	dataDir string
	nsDir   string
}

func newEnv(t *testing.T, extraBin ...string) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall"} {
		if !findPlugin(p, []string{systemBinDir}) {
			t.Skipf("CNI plugin %s not in %s", p, systemBinDir)
		}
	}
	suffix := randHex(t, 3)
	e := &env{
		name:    "btest-" + suffix,
		bridge:  "btest" + suffix,
		subnet:  freeSubnet(t),
		dataDir: t.TempDir(),
		nsDir:   filepath.Join(t.TempDir(), "netns"),
	}
	restoreForwarding(t)
	t.Cleanup(func() {
		unix.Unmount(e.nsDir, unix.MNT_DETACH)
		if out, err := exec.Command("ip", "link", "del", e.bridge).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			t.Errorf("ip link del %s: %v: %s", e.bridge, err, out)
		}
	})
	m, err := NewManager(Options{
		ConfDir:  t.TempDir(),
		BinDirs:  append(extraBin, systemBinDir),
		CacheDir: t.TempDir(),
		Default:  DefaultConfig{Name: e.name, Bridge: e.bridge, Subnet: e.subnet.String(), DataDir: e.dataDir},
		// Tests give user-defined networks a subnet of their own.
		NetworkDir:  filepath.Join(t.TempDir(), "networks"),
		SubnetPools: []SubnetPool{{Base: netip.MustParsePrefix("10.212.0.0/24"), Size: 24}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if wrote, err := m.EnsureDefaultConfig(); err != nil || !wrote {
		t.Fatalf("EnsureDefaultConfig = %v, %v", wrote, err)
	}
	if wrote, err := m.EnsureDefaultConfig(); err != nil || wrote {
		t.Fatalf("second EnsureDefaultConfig = %v, %v", wrote, err)
	}
	if err := m.Ready(); err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freeSubnet picks a 10.211.N.0/24 that no host route uses yet.
func freeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		var b [1]byte
		rand.Read(b[:])
		n := int(b[0])%250 + 1
		p := netip.MustParsePrefix(fmt.Sprintf("10.211.%d.0/24", n))
		if !bytes.Contains(routes, []byte(fmt.Sprintf("10.211.%d.", n))) {
			return p
		}
	}
	t.Fatal("no free 10.211.N.0/24")
	return netip.Prefix{}
}

// restoreForwarding undoes the bridge plugin's isGateway, which turns on
// net.ipv4.ip_forward host-wide.
func restoreForwarding(t *testing.T) {
	const f = "/proc/sys/net/ipv4/ip_forward"
	old, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(f, old, 0o644) })
}

func (e *env) newNetNS(t *testing.T, name string) string {
	t.Helper()
	p, err := netns.New(e.nsDir, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(p) })
	return p
}

// leases lists the addresses host-local holds for the network.
func (e *env) leases(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dataDir, e.name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ent := range ents {
		if _, err := netip.ParseAddr(ent.Name()); err == nil {
			ips = append(ips, ent.Name())
		}
	}
	return ips
}

var (
	counters = regexp.MustCompile(`\[\d+:\d+\]`)
	// Per-attachment chains: bridge's masquerade chain CNI-<hash>, portmap's
	// CNI-DN-<hash>. The shared ones (CNI-HOSTPORT-*, CNI-FORWARD,
	// CNI-ADMIN) stay once made and hold other networks' rules too.
	podChain = regexp.MustCompile(`^CNI-(DN-)?[0-9a-f]{16,}$`)
	jump     = regexp.MustCompile(`-j (\S+)`)
)

// iptables returns this network's rules: those naming its network,
// subnet or bridge, plus everything in the per-attachment chains they jump
// to, without counters. Other tools' rules on this host do not matter.
func (e *env) iptables(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, counters.ReplaceAllString(l, ""))
		}
	}
	prefix := strings.TrimSuffix(e.subnet.Addr().String(), "0")
	markers := []string{`"` + e.name + `"`, prefix, e.bridge}
	chains := map[string]bool{}
	var ours []string
	for _, l := range lines {
		for _, mk := range markers {
			if strings.Contains(l, mk) {
				ours = append(ours, l)
				if m := jump.FindStringSubmatch(l); m != nil && podChain.MatchString(m[1]) {
					chains[m[1]] = true
				}
				break
			}
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "-A" && chains[f[1]] || len(f) >= 1 && chains[strings.TrimPrefix(f[0], ":")] {
			ours = append(ours, l)
		}
	}
	sort.Strings(ours)
	return compact(ours)
}

// serve listens on port inside the namespace and answers every connection
// with "hello from <ns>".
func serve(t *testing.T, nsPath string, port int) {
	t.Helper()
	var ln net.Listener
	err := netns.Do(nsPath, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from "+filepath.Base(nsPath))
			c.Close()
		}
	}()
}

func dial(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// freePort returns a loopback TCP port that is free now.
func freePort(t *testing.T) int32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func (e *env) warmUp(t *testing.T) {
	t.Helper()
	// The first ADD creates the bridge and shared chains, which outlive the
	// pod by design; measure from there.
	ns := e.newNetNS(t, "warmup")
	pod := PodNetwork{ID: "warmup", NetNS: ns, PortMappings: []PortMapping{{HostPort: freePort(t), ContainerPort: 80}}}
	if _, err := e.m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Teardown(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
}

func TestSetupTeardown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.warmUp(t)
	rulesBefore, leasesBefore := e.iptables(t), e.leases(t)

	ns := e.newNetNS(t, "pod1")
	serve(t, ns, 8080)
	hostPort := freePort(t)
	pod := PodNetwork{
		ID: "pod1-" + randHex(t, 8), Name: "web", Namespace: "default", UID: "uid-1", NetNS: ns,
		PortMappings: []PortMapping{
			{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP", HostIP: "127.0.0.1"},
			{ContainerPort: 9090}, // no host port: ignored
		},
	}
	res, err := e.m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 1 || res.Interface != "eth0" || len(res.Raw) == 0 {
		t.Fatalf("result = %+v", res)
	}
	ip, _ := netip.AddrFromSlice(res.IPs[0].To4())
	if !e.subnet.Contains(ip) {
		t.Fatalf("pod IP %s not in %s", ip, e.subnet)
	}
	t.Logf("pod IP %s, host port 127.0.0.1:%d", ip, hostPort)
	if diff := cmp.Diff([]string{ip.String()}, e.leases(t)); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
	var raw struct{ IPs []struct{ Address string } }
	if err := json.Unmarshal(res.Raw, &raw); err != nil || len(raw.IPs) == 0 {
		t.Errorf("raw result %s: %v", res.Raw, err)
	}

	// lo is up inside, eth0 has the address.
	err = netns.Do(ns, func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		if lo.Flags&net.FlagUp == 0 {
			t.Error("lo is down in the pod")
		}
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, _ := eth0.Addrs()
		if len(addrs) == 0 || !strings.HasPrefix(addrs[0].String(), ip.String()+"/") {
			t.Errorf("eth0 addrs = %v", addrs)
		}
		got, err := dial("127.0.0.1:8080")
		if err != nil || got != "hello from pod1" {
			t.Errorf("dial own loopback: %q, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := e.m.Setup(ctx, pod); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Setup = %v, want ErrAlreadyExists", err)
	}
	want := "hello from pod1"
	if got, err := dial(net.JoinHostPort(ip.String(), "8080")); err != nil || got != want {
		t.Errorf("dial pod IP from host: %q, %v", got, err)
	}
	if got, err := dial(fmt.Sprintf("127.0.0.1:%d", hostPort)); err != nil || got != want {
		t.Errorf("dial host port 127.0.0.1:%d: %q, %v", hostPort, got, err)
	}
	if rules := e.iptables(t); cmp.Equal(rules, rulesBefore) {
		t.Error("Setup added no iptables rules")
	}

	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := e.leases(t); !cmp.Equal(got, leasesBefore, cmpopts.EquateEmpty()) {
		t.Errorf("leases after Teardown = %v, want %v", got, leasesBefore)
	}
	if diff := cmp.Diff(rulesBefore, e.iptables(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("iptables after Teardown (-before +after):\n%s", diff)
	}
	if _, err := dial(fmt.Sprintf("127.0.0.1:%d", hostPort)); err == nil {
		t.Error("host port still forwarded after Teardown")
	}
	// Idempotent, also with the netns gone.
	if err := e.m.Teardown(ctx, pod); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
	netns.Remove(ns)
	if err := e.m.Teardown(ctx, PodNetwork{ID: pod.ID}); err != nil {
		t.Errorf("Teardown without netns: %v", err)
	}
	if err := e.m.Teardown(ctx, PodNetwork{ID: "never-set-up"}); err != nil {
		t.Errorf("Teardown of an unknown ID: %v", err)
	}
}

// Teardown as it happens after crashes: the netns already removed, libcni's
// cache lost (a crash during Setup, before libcni wrote it), the caller no
// longer knowing the port mappings (the sandbox manager passes none).
func TestTeardownWithoutState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.warmUp(t)
	rulesBefore := e.iptables(t)

	for i, tc := range []struct {
		name        string
		removeNetns bool
		dropCache   bool
		callerPorts bool
	}{
		{name: "netns removed", removeNetns: true},
		{name: "netns removed, empty path", removeNetns: true},
		{name: "cache lost", dropCache: true},
		{name: "netns removed and cache lost", removeNetns: true, dropCache: true, callerPorts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.newNetNS(t, fmt.Sprintf("ws%d", i))
			ports := []PortMapping{{HostPort: freePort(t), ContainerPort: 80}}
			pod := PodNetwork{ID: "ws-" + randHex(t, 8), NetNS: ns, PortMappings: ports}
			if _, err := e.m.Setup(ctx, pod); err != nil {
				t.Fatal(err)
			}
			if len(e.leases(t)) != 1 {
				t.Fatalf("leases = %v", e.leases(t))
			}
			if tc.removeNetns {
				if err := netns.Remove(ns); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dropCache {
				if err := os.RemoveAll(filepath.Join(e.m.opts.CacheDir, "results")); err != nil {
					t.Fatal(err)
				}
			}
			down := PodNetwork{ID: pod.ID, NetNS: ns}
			if strings.HasSuffix(tc.name, "empty path") {
				down.NetNS = ""
			}
			if tc.callerPorts {
				down.PortMappings = ports
			}
			if err := e.m.Teardown(ctx, down); err != nil {
				t.Fatal(err)
			}
			if got := e.leases(t); len(got) != 0 {
				t.Errorf("leases after Teardown = %v", got)
			}
			if diff := cmp.Diff(rulesBefore, e.iptables(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("iptables after Teardown (-before +after):\n%s", diff)
			}
			if err := e.m.Teardown(ctx, down); err != nil {
				t.Errorf("second Teardown: %v", err)
			}
		})
	}
}

// A plugin after bridge that fails ADD: Setup must undo bridge's work.
const failingPlugin = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.0.0","code":999,"msg":"injected failure"}'; exit 1 ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}' ;;
esac
exit 0
`

func TestSetupFailureLeaksNothing(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "btestfail"), []byte(failingPlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, bin)
	ctx := context.Background()
	e.warmUp(t)
	rulesBefore := e.iptables(t)

	conf := filepath.Join(e.m.opts.ConfDir, DefaultConfFile)
	raw, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	var list map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	list["plugins"] = append(list["plugins"].([]any), map[string]any{"type": "btestfail"})
	raw, _ = json.Marshal(list)
	if err := os.WriteFile(conf, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	ns := e.newNetNS(t, "fail")
	pod := PodNetwork{ID: "fail-" + randHex(t, 8), NetNS: ns, PortMappings: []PortMapping{{HostPort: freePort(t), ContainerPort: 80}}}
	_, err = e.m.Setup(ctx, pod)
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Setup = %v, want the injected failure", err)
	}
	if got := e.leases(t); len(got) != 0 {
		t.Errorf("leases after failed Setup = %v", got)
	}
	if diff := cmp.Diff(rulesBefore, e.iptables(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("iptables after failed Setup (-before +after):\n%s", diff)
	}
	err = netns.Do(ns, func() error {
		if _, err := net.InterfaceByName("eth0"); err == nil {
			t.Error("eth0 left in the pod after failed Setup")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSetupTeardownCycles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.warmUp(t)
	rulesBefore, leasesBefore := e.iptables(t), e.leases(t)
	ns := e.newNetNS(t, "cycle")
	port := freePort(t)
	seen := map[string]bool{}
	for i := range 50 {
		pod := PodNetwork{ID: fmt.Sprintf("cycle-%d-%s", i, randHex(t, 4)), NetNS: ns, PortMappings: []PortMapping{{HostPort: port, ContainerPort: 80}}}
		res, err := e.m.Setup(ctx, pod)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		seen[res.IPs[0].String()] = true
		if err := e.m.Teardown(ctx, pod); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	t.Logf("50 cycles used %d distinct IPs", len(seen))
	if got := e.leases(t); !cmp.Equal(got, leasesBefore, cmpopts.EquateEmpty()) {
		t.Errorf("leases after cycles = %v, want %v", got, leasesBefore)
	}
	if diff := cmp.Diff(rulesBefore, e.iptables(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("iptables after cycles (-before +after):\n%s", diff)
	}
	ents, _ := os.ReadDir(filepath.Join(e.m.opts.CacheDir, "results"))
	if len(ents) != 0 {
		t.Errorf("libcni cache holds %d entries after cycles", len(ents))
	}
}
