package compat

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// netInspect is what the tests read of `docker network inspect`.
type netInspect struct {
	Name, ID, Driver, Scope string
	Internal                bool
	Labels                  map[string]string
	IPAM                    struct {
		Config []struct{ Subnet, Gateway, IPRange string }
	}
	Containers map[string]struct{ Name, IPv4Address string }
}

func (e *engine) inspectNetwork(name string) netInspect {
	e.t.Helper()
	var out []netInspect
	if err := json.Unmarshal([]byte(e.docker("network", "inspect", name)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("network inspect %s: %v %v", name, out, err)
	}
	return out[0]
}

func TestNetworkLifecycle(t *testing.T) {
	e := bareEngine(t)
	subnet := fmt.Sprintf("10.214.%d.0/24", e.Slot)
	gw := fmt.Sprintf("10.214.%d.1", e.Slot)
	ipRange := fmt.Sprintf("10.214.%d.128/25", e.Slot)
	id := e.docker("network", "create", "--subnet", subnet, "--gateway", gw, "--ip-range", ipRange, "--label", "team=a", "-d", "bridge", "front")
	if len(id) != 64 {
		t.Errorf("network create printed %q", id)
	}
	e.docker("network", "create", "--internal", "--subnet", fmt.Sprintf("10.215.%d.0/24", e.Slot), "back")

	n := e.inspectNetwork("front")
	if n.ID != id || n.Driver != "bridge" || n.Scope != "local" || n.Labels["team"] != "a" || len(n.IPAM.Config) != 1 ||
		n.IPAM.Config[0].Subnet != subnet || n.IPAM.Config[0].Gateway != gw || n.IPAM.Config[0].IPRange != ipRange {
		t.Errorf("network inspect front: %+v", n)
	}
	if b := e.inspectNetwork(id[:12]); b.Name != "front" {
		t.Errorf("network inspect by ID prefix: %+v", b)
	}
	if b := e.inspectNetwork("back"); !b.Internal {
		t.Errorf("network back is not internal: %+v", b)
	}

	ls := func(args ...string) []string {
		t.Helper()
		names := strings.Fields(e.docker(append([]string{"network", "ls", "--format", "{{.Name}}"}, args...)...))
		slices.Sort(names)
		return names
	}
	if got := ls(); !slices.Equal(got, []string{"back", "bridge", "front", "host", "none"}) {
		t.Errorf("network ls: %v", got)
	}
	if got := ls("--filter", "type=custom"); !slices.Equal(got, []string{"back", "front"}) {
		t.Errorf("network ls type=custom: %v", got)
	}
	if got := ls("--filter", "label=team=a"); !slices.Equal(got, []string{"front"}) {
		t.Errorf("network ls label=team=a: %v", got)
	}
	if got := ls("--filter", "driver=host"); !slices.Equal(got, []string{"host"}) {
		t.Errorf("network ls driver=host: %v", got)
	}
	if got := ls("--filter", "dangling=true"); !slices.Equal(got, []string{"back", "front"}) {
		t.Errorf("network ls dangling=true: %v", got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "front"}, "network with name front already exists"},
		{[]string{"network", "create", "--subnet", subnet, "other"}, "Pool overlaps with other one on this address space"},
		{[]string{"network", "create", "bridge"}, "operation is not permitted on predefined bridge network"},
		{[]string{"network", "create", "-d", "foo", "n3"}, `plugin "foo" not found`},
		{[]string{"network", "inspect", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "rm", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "rm", "bridge"}, "bridge is a pre-defined network and cannot be removed"},
		{[]string{"network", "rm", "host"}, "host is a pre-defined network and cannot be removed"},
	} {
		if msg := e.dockerFails(tc.args...); !strings.Contains(msg, tc.want) {
			t.Errorf("docker %s: %q, want %q", strings.Join(tc.args, " "), msg, tc.want)
		}
	}
	if got := ls(); len(got) != 5 {
		t.Errorf("bad requests changed the networks: %v", got)
	}

	// Networks survive a restart.
	e.Stop()
	e.Start()
	if n := e.inspectNetwork("front"); n.ID != id {
		t.Errorf("front after a restart: %+v", n)
	}
	if out := e.docker("network", "prune", "-f", "--filter", "label=team=a"); !strings.Contains(out, "front") || strings.Contains(out, "back") {
		t.Errorf("network prune label=team=a: %s", out)
	}
	e.docker("network", "rm", "back")
	if got := ls(); !slices.Equal(got, []string{"bridge", "host", "none"}) {
		t.Errorf("network ls after rm and prune: %v", got)
	}
}

// TestNetworkNamesResolve runs containers on two user networks: on one
// they reach each other by name, alias and compose service (nslookup,
// ping, wget to an httpd), including a container started later; the
// other network does not resolve their names.
func TestNetworkNamesResolve(t *testing.T) {
	e := newEngine(t, "")
	e.docker("network", "create", "--subnet", fmt.Sprintf("10.214.%d.0/24", e.Slot), "appnet")
	e.docker("network", "create", "--subnet", fmt.Sprintf("10.215.%d.0/24", e.Slot), "othernet")
	webIP := fmt.Sprintf("10.214.%d.50", e.Slot)
	e.docker("run", "-d", "--name", "web", "--network", "appnet", "--network-alias", "www", "--ip", webIP,
		"--label", "com.docker.compose.service=frontend", "busybox",
		"sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec busybox httpd -f -p 80 -h /www")

	// A client started after the server resolves it by every name.
	for _, name := range []string{"web", "www", "frontend"} {
		out := e.docker("run", "--rm", "--network", "appnet", "busybox", "nslookup", name)
		if !strings.Contains(out, webIP) {
			t.Errorf("nslookup %s on appnet:\n%s", name, out)
		}
	}
	if out := e.docker("run", "--rm", "--network", "appnet", "busybox", "ping", "-c1", "-W5", "www"); !strings.Contains(out, "1 packets received") {
		t.Errorf("ping www:\n%s", out)
	}
	if out := e.docker("run", "--rm", "--network", "appnet", "busybox", "wget", "-q", "-O", "-", "http://web/"); out != "hello-from-web" {
		t.Errorf("wget http://web/: %q", out)
	}
	// The server resolves a container started after it too.
	e.docker("run", "-d", "--name", "late", "--network", "appnet", "busybox", "sleep", "300")
	lateIP := strings.TrimSpace(e.docker("inspect", "-f", "{{(index .NetworkSettings.Networks \"appnet\").IPAddress}}", "late"))
	if out := e.docker("run", "--rm", "--network", "appnet", "busybox", "nslookup", "late"); lateIP == "" || !strings.Contains(out, lateIP) {
		t.Errorf("nslookup late (%s):\n%s", lateIP, out)
	}

	// Another network knows none of these names.
	out, errOut, err := e.Run("", e.cli, "run", "--rm", "--network", "othernet", "busybox", "nslookup", "web")
	if err == nil || strings.Contains(out, webIP) {
		t.Errorf("nslookup web on othernet succeeded:\n%s%s", out, errOut)
	}

	// A network with endpoints is not removed.
	if msg := e.dockerFails("network", "rm", "appnet"); !strings.Contains(msg, "has active endpoints") {
		t.Errorf("network rm appnet with containers: %s", msg)
	}
	n := e.inspectNetwork("appnet")
	var names []string
	for _, c := range n.Containers {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"late", "web"}) {
		t.Errorf("appnet's containers: %+v", n.Containers)
	}
}

// TestNetworkConnectDisconnect gives a running container a second
// interface on another network and takes it away again.
func TestNetworkConnectDisconnect(t *testing.T) {
	e := newEngine(t, "")
	e.docker("network", "create", "--subnet", fmt.Sprintf("10.214.%d.0/24", e.Slot), "net1")
	e.docker("network", "create", "--subnet", fmt.Sprintf("10.215.%d.0/24", e.Slot), "net2")
	e.docker("run", "-d", "--name", "box", "--network", "net1", "busybox", "sleep", "300")
	e.docker("run", "-d", "--name", "peer", "--network", "net2", "busybox", "sleep", "300")
	if out := e.docker("exec", "box", "cat", "/proc/net/dev"); strings.Contains(out, "eth1") {
		t.Fatalf("box has eth1 before connect:\n%s", out)
	}
	ip := fmt.Sprintf("10.215.%d.77", e.Slot)
	e.docker("network", "connect", "--alias", "boxy", "--ip", ip, "net2", "box")
	if out := e.docker("exec", "box", "ip", "addr", "show", "eth1"); !strings.Contains(out, ip+"/24") {
		t.Errorf("eth1 after connect:\n%s", out)
	}
	if out := e.docker("exec", "peer", "nslookup", "boxy"); !strings.Contains(out, ip) {
		t.Errorf("nslookup boxy from net2:\n%s", out)
	}
	if out := e.docker("exec", "peer", "ping", "-c1", "-W5", "box"); !strings.Contains(out, "1 packets received") {
		t.Errorf("ping box from net2:\n%s", out)
	}
	if n := e.inspectNetwork("net2"); len(n.Containers) != 2 {
		t.Errorf("net2's containers after connect: %+v", n.Containers)
	}
	if msg := e.dockerFails("network", "connect", "net2", "box"); !strings.Contains(msg, "already exists in network net2") {
		t.Errorf("second connect: %s", msg)
	}
	if msg := e.dockerFails("network", "connect", "net2", "nosuch"); !strings.Contains(msg, "No such container: nosuch") {
		t.Errorf("connect of an unknown container: %s", msg)
	}
	if msg := e.dockerFails("network", "connect", "nosuch", "box"); !strings.Contains(msg, "network nosuch not found") {
		t.Errorf("connect to an unknown network: %s", msg)
	}

	e.docker("network", "disconnect", "net2", "box")
	if out := e.docker("exec", "box", "cat", "/proc/net/dev"); strings.Contains(out, "eth1") {
		t.Errorf("box still has eth1 after disconnect:\n%s", out)
	}
	if n := e.inspectNetwork("net2"); len(n.Containers) != 1 {
		t.Errorf("net2's containers after disconnect: %+v", n.Containers)
	}
	out, _, err := e.Run("", e.cli, "exec", "peer", "nslookup", "boxy")
	if err == nil && strings.Contains(out, ip) {
		t.Errorf("boxy still resolves after disconnect:\n%s", out)
	}

	// The network the container was made on comes off and back.
	e.docker("network", "disconnect", "net1", "box")
	if out := e.docker("exec", "box", "cat", "/proc/net/dev"); strings.Contains(out, "eth0") {
		t.Errorf("box still has eth0 after disconnecting net1:\n%s", out)
	}
	if n := e.inspectNetwork("net1"); len(n.Containers) != 0 {
		t.Errorf("net1's containers after disconnect: %+v", n.Containers)
	}
	e.docker("network", "connect", "--alias", "again", "net1", "box")
	if out := e.docker("exec", "box", "ip", "addr", "show", "eth0"); !strings.Contains(out, fmt.Sprintf("10.214.%d.", e.Slot)) {
		t.Errorf("eth0 after connecting net1 again:\n%s", out)
	}
	if out := e.docker("run", "--rm", "--network", "net1", "busybox", "nslookup", "again"); !strings.Contains(out, fmt.Sprintf("10.214.%d.", e.Slot)) {
		t.Errorf("nslookup again on net1:\n%s", out)
	}
}
