package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/netns"
)

// createNetwork makes a user-defined network on a free /24 of its own and
// removes its bridge at the end whatever happens.
func (e *env) createNetwork(t *testing.T, prefix string, internal bool, taken ...netip.Prefix) Network {
	t.Helper()
	subnet := freeSubnet(t)
	for i := 0; subnet == e.subnet || contains(taken, subnet); i++ {
		if i == 20 {
			t.Fatal("no distinct free subnet")
		}
		subnet = freeSubnet(t)
	}
	n, err := e.m.CreateNetwork(context.Background(), NetworkSpec{
		Name: prefix + "-" + randHex(t, 3), Subnet: subnet.String(), Internal: internal, Labels: map[string]string{"test": t.Name()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteBridge(n.Bridge) })
	return n
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// netState is what a pod's namespace shows: its interfaces with their
// IPv4 addresses, and its IPv4 routes as "dst via gw dev".
type netState struct {
	Addrs  map[string][]string
	Routes []string
}

func podNetState(t *testing.T, ns string) netState {
	t.Helper()
	st := netState{Addrs: map[string][]string{}}
	err := netns.Do(ns, func() error {
		ifaces, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifaces {
			if i.Name == "lo" {
				continue
			}
			addrs, _ := i.Addrs()
			st.Addrs[i.Name] = nil
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
					st.Addrs[i.Name] = append(st.Addrs[i.Name], ipn.String())
				}
			}
		}
		// /proc/self/net is the main thread's namespace; this thread's
		// is under thread-self.
		data, err := os.ReadFile("/proc/thread-self/net/route")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 8 {
				continue
			}
			dst, gw, mask := leHexAddr(f[1]), leHexAddr(f[2]), leHexAddr(f[7])
			bits, _ := net.IPMask(mask.AsSlice()).Size()
			if bits == 0 {
				st.Routes = append(st.Routes, fmt.Sprintf("default via %s dev %s", gw, f[0]))
			} else {
				st.Routes = append(st.Routes, fmt.Sprintf("%s via %s dev %s", netip.PrefixFrom(dst, bits), gw, f[0]))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(st.Routes)
	return st
}

// dialFrom dials addr from inside the namespace.
func dialFrom(ns, addr string) (string, error) {
	var got string
	err := netns.Do(ns, func() (err error) {
		got, err = dial(addr)
		return err
	})
	return got, err
}

// leasesOf lists the addresses host-local holds for id on network name.
func (e *env) leasesOf(t *testing.T, name, id string) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir(filepath.Join(e.dataDir, name))
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(e.dataDir, name, ent.Name()))
		if first, _, _ := strings.Cut(string(b), "\n"); err == nil && strings.TrimSpace(first) == id {
			out = append(out, ent.Name())
		}
	}
	return out
}

// leHexAddr reads an IPv4 address as /proc/net/route writes it.
func leHexAddr(s string) netip.Addr {
	var b [4]byte
	fmt.Sscanf(s, "%02X%02X%02X%02X", &b[3], &b[2], &b[1], &b[0])
	return netip.AddrFrom4(b)
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// rulesOf returns the iptables-save lines that mention any of marks.
func rulesOf(t *testing.T, marks ...string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, m := range marks {
			if strings.Contains(l, m) {
				lines = append(lines, l)
				break
			}
		}
	}
	return lines
}

func TestTwoNetworks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	n1 := e.createNetwork(t, "bt1", false)
	n2 := e.createNetwork(t, "bt2", false, n1.Subnet)
	marks := []string{`"` + n1.Name + `"`, `"` + n2.Name + `"`, n1.Bridge, n2.Bridge}
	rulesBefore := rulesOf(t, marks...)

	nsA, nsB, nsC := e.newNetNS(t, "a"), e.newNetNS(t, "b"), e.newNetNS(t, "c")
	serve(t, nsA, 8080)
	hostPort := freePort(t)
	idA, idB, idC := "a-"+randHex(t, 8), "b-"+randHex(t, 8), "c-"+randHex(t, 8)
	a1 := PodNetwork{ID: idA, Network: n1.Name, NetNS: nsA}
	a2 := PodNetwork{ID: idA, Network: n2.Name, Interface: "eth1", NetNS: nsA,
		PortMappings: []PortMapping{{HostPort: hostPort, ContainerPort: 8080, HostIP: "127.0.0.1"}}}
	b := PodNetwork{ID: idB, Network: n1.Name, NetNS: nsB}
	c := PodNetwork{ID: idC, Network: n2.Name, NetNS: nsC}
	res := map[string]Result{}
	for _, p := range []PodNetwork{a1, a2, b, c} {
		r, err := e.m.Setup(ctx, p)
		if err != nil {
			t.Fatalf("Setup(%s on %s): %v", p.ID, p.Network, err)
		}
		res[p.ID+"/"+p.Network] = r
	}
	ipA1, ipA2 := res[idA+"/"+n1.Name], res[idA+"/"+n2.Name]
	if ipA1.Network != n1.Name || ipA1.Interface != "eth0" || !n1.Subnet.Contains(addrOf(ipA1.IPs[0])) {
		t.Errorf("A on %s: %+v", n1.Name, ipA1)
	}
	if ipA2.Network != n2.Name || ipA2.Interface != "eth1" || !n2.Subnet.Contains(addrOf(ipA2.IPs[0])) {
		t.Errorf("A on %s: %+v", n2.Name, ipA2)
	}
	atts, err := e.m.Attachments(idA)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(atts, func(i, j int) bool { return atts[i].Interface < atts[j].Interface })
	if diff := cmp.Diff([]Attachment{{n1.Name, "eth0"}, {n2.Name, "eth1"}}, atts); diff != "" {
		t.Errorf("Attachments (-want +got):\n%s", diff)
	}

	// Only the first network routes everything else.
	stA := podNetState(t, nsA)
	wantRoutes := []string{
		fmt.Sprintf("%s via 0.0.0.0 dev eth0", n1.Subnet),
		fmt.Sprintf("%s via 0.0.0.0 dev eth1", n2.Subnet),
		fmt.Sprintf("default via %s dev eth0", n1.Gateway),
	}
	sort.Strings(wantRoutes)
	if diff := cmp.Diff(wantRoutes, stA.Routes); diff != "" {
		t.Errorf("A's routes (-want +got):\n%s", diff)
	}

	// A second attachment to a network, or a taken interface, changes nothing.
	if _, err := e.m.Setup(ctx, PodNetwork{ID: idA, Network: n1.Name, Interface: "eth2", NetNS: nsA}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Setup on the same network again = %v, want ErrAlreadyExists", err)
	}
	if _, err := e.m.Setup(ctx, PodNetwork{ID: idA, Interface: "eth1", NetNS: nsA}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Setup on a taken interface = %v, want ErrAlreadyExists", err)
	}
	if _, err := e.m.Setup(ctx, PodNetwork{ID: idA, Network: "nosuch", Interface: "eth2", NetNS: nsA}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Setup on an unknown network = %v, want ErrNotFound", err)
	}
	if _, err := e.m.Setup(ctx, PodNetwork{ID: idA, Network: n2.Name, Interface: "bad/name", NetNS: nsA}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Setup with a bad interface name = %v, want ErrInvalidArgument", err)
	}
	if diff := cmp.Diff(stA, podNetState(t, nsA)); diff != "" {
		t.Errorf("refused Setups changed A (-before +after):\n%s", diff)
	}

	want := "hello from " + filepath.Base(nsA)
	check := func(what, ns, addr string, ok bool) {
		t.Helper()
		got, err := dialFrom(ns, addr)
		if ok && (err != nil || got != want) {
			t.Errorf("%s: %q, %v", what, got, err)
		}
		if !ok && err == nil {
			t.Errorf("%s: reached A, want no route", what)
		}
	}
	a1Addr := net.JoinHostPort(ipA1.IPs[0].String(), "8080")
	a2Addr := net.JoinHostPort(ipA2.IPs[0].String(), "8080")
	check("B to A over "+n1.Name, nsB, a1Addr, true)
	check("C to A over "+n2.Name, nsC, a2Addr, true)
	if got, err := dial(fmt.Sprintf("127.0.0.1:%d", hostPort)); err != nil || got != want {
		t.Errorf("host port to A on %s: %q, %v", n2.Name, got, err)
	}
	if err := e.m.RemoveNetwork(ctx, n2.Name); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("RemoveNetwork with pods on it = %v, want ErrConflict", err)
	}

	// Detach A from the first network: the second keeps working.
	if err := e.m.Detach(ctx, a1); err != nil {
		t.Fatal(err)
	}
	stA = podNetState(t, nsA)
	if _, ok := stA.Addrs["eth0"]; ok || len(stA.Addrs["eth1"]) != 1 {
		t.Errorf("A after detaching %s: %+v", n1.Name, stA.Addrs)
	}
	check("C to A over "+n2.Name+" after detaching "+n1.Name, nsC, a2Addr, true)
	check("B to A's old address on "+n1.Name, nsB, a1Addr, false)
	if got, err := dial(fmt.Sprintf("127.0.0.1:%d", hostPort)); err != nil || got != want {
		t.Errorf("host port to A after detaching %s: %q, %v", n1.Name, got, err)
	}
	if l := e.leasesOf(t, n1.Name, idA); len(l) != 0 {
		t.Errorf("A still leases %v on %s", l, n1.Name)
	}
	if l := e.leasesOf(t, n2.Name, idA); len(l) != 1 {
		t.Errorf("A's lease on %s = %v", n2.Name, l)
	}
	if err := e.m.Detach(ctx, a1); err != nil {
		t.Errorf("second Detach: %v", err)
	}

	// A restarted berthd (a new Manager on the same directories) tears
	// down from the cache.
	m2, err := NewManager(e.m.opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []PodNetwork{{ID: idA, NetNS: nsA}, {ID: idB, NetNS: nsB}, {ID: idC}} {
		if err := m2.Teardown(ctx, p); err != nil {
			t.Errorf("Teardown(%s) after restart: %v", p.ID, err)
		}
	}
	if st := podNetState(t, nsA); len(st.Addrs) != 0 {
		t.Errorf("A after Teardown: %+v", st.Addrs)
	}
	if _, err := dial(fmt.Sprintf("127.0.0.1:%d", hostPort)); err == nil {
		t.Error("host port still forwarded after Teardown")
	}
	for _, n := range []Network{n1, n2} {
		for _, id := range []string{idA, idB, idC} {
			if l := e.leasesOf(t, n.Name, id); len(l) != 0 {
				t.Errorf("%s still leases %v on %s", id, l, n.Name)
			}
		}
	}
	if diff := cmp.Diff(rulesBefore, rulesOf(t, marks...), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("iptables rules of the networks after Teardown (-before +after):\n%s", diff)
	}

	// Now they go, bridges, files and leases with them.
	for _, n := range []Network{n1, n2} {
		if _, err := net.InterfaceByName(n.Bridge); err != nil {
			t.Errorf("bridge %s of %s: %v", n.Bridge, n.Name, err)
		}
		if err := m2.RemoveNetwork(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := net.InterfaceByName(n.Bridge); err == nil {
			t.Errorf("bridge %s of %s left", n.Bridge, n.Name)
		}
		if _, err := os.Stat(filepath.Join(e.dataDir, n.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lease directory of %s left: %v", n.Name, err)
		}
	}
	if left := files(t, e.m.opts.NetworkDir); len(left) != 0 {
		t.Errorf("network files left: %v", left)
	}
}

func TestInternalNetwork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	n := e.createNetwork(t, "bti", true)
	nsA, nsB := e.newNetNS(t, "a"), e.newNetNS(t, "b")
	serve(t, nsA, 8080)
	a := PodNetwork{ID: "a-" + randHex(t, 8), Network: n.Name, NetNS: nsA}
	b := PodNetwork{ID: "b-" + randHex(t, 8), Network: n.Name, NetNS: nsB}
	ra, err := e.m.Setup(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Teardown(ctx, a) })
	if _, err := e.m.Setup(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Teardown(ctx, b) })
	if diff := cmp.Diff([]string{n.Subnet.String() + " via 0.0.0.0 dev eth0"}, podNetState(t, nsA).Routes); diff != "" {
		t.Errorf("routes on an internal network (-want +got):\n%s", diff)
	}
	br, err := net.InterfaceByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if addrs, _ := br.Addrs(); len(addrs) != 0 {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				t.Errorf("internal bridge has address %s", a)
			}
		}
	}
	addr := net.JoinHostPort(ra.IPs[0].String(), "8080")
	if got, err := dialFrom(nsB, addr); err != nil || got != "hello from "+filepath.Base(nsA) {
		t.Errorf("B to A on the internal network: %q, %v", got, err)
	}
	if _, err := dial(addr); err == nil {
		t.Error("the host reached a pod on an internal network")
	}

	// A network with a way out, joined second, gives the default route.
	out := e.createNetwork(t, "bto", false, n.Subnet)
	a2 := PodNetwork{ID: a.ID, Network: out.Name, Interface: "eth1", NetNS: nsA}
	if _, err := e.m.Setup(ctx, a2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Teardown(ctx, a2) }) // before the bridge goes
	want := []string{
		n.Subnet.String() + " via 0.0.0.0 dev eth0",
		out.Subnet.String() + " via 0.0.0.0 dev eth1",
		fmt.Sprintf("default via %s dev eth1", out.Gateway),
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, podNetState(t, nsA).Routes); diff != "" {
		t.Errorf("routes on an internal and an outgoing network (-want +got):\n%s", diff)
	}
}
