package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestNetworkCleanupCycles creates and deletes pods with a host port many
// times, killing berthd now and then between a pod's creation and its
// deletion: the IPAM store and iptables end as they began, so no IP or
// rule leaks, even when DEL runs after a restart.
func TestNetworkCleanupCycles(t *testing.T) {
	cycles := 300
	if s := os.Getenv("BERTH_NET_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	d, _, subnet := podDaemon(t, "")
	before := iptablesRules(t)
	// Only rules of this test's network and of the portmap/firewall
	// plugins' per-pod chains are compared; other tools' rules may change.
	mine := func(rules []string) []string {
		var out []string
		for _, r := range rules {
			if strings.Contains(r, subnet.String()) || strings.Contains(r, "CNI-") && !isSharedChain(r) {
				out = append(out, r)
			}
		}
		return out
	}
	for i := 0; i < cycles; i++ {
		pod := podConfig(t, "cycle-"+strconv.Itoa(i))
		pod.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 12090}}
		id := runPod(t, d, pod)
		if i == 0 && len(mine(iptablesRules(t))) == len(mine(before)) {
			t.Fatalf("a running pod's iptables rules are invisible to this test's filter")
		}
		if i%50 == 25 {
			d.Kill()
			d.Start()
		}
		if _, err := d.RT.StopPodSandbox(ctxT(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("cycle %d: StopPodSandbox: %v", i, err)
		}
		if _, err := d.RT.RemovePodSandbox(ctxT(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("cycle %d: RemovePodSandbox: %v", i, err)
		}
	}
	after := iptablesRules(t)
	if diff := cmp.Diff(mine(before), mine(after)); diff != "" {
		t.Errorf("iptables changed after %d cycles (-before +after):\n%s", cycles, diff)
	}
	leases, _ := filepath.Glob(filepath.Join(d.State, "cni", "ipam", "*", "*"))
	var ips []string
	for _, l := range leases {
		if base := filepath.Base(l); strings.Count(base, ".") == 3 {
			ips = append(ips, base)
		}
	}
	if len(ips) != 0 {
		t.Errorf("IP leases left after %d cycles: %v", cycles, ips)
	}
	assertNothingLeft(t, d)
}

// isSharedChain: the chains the plugins create once and share between
// pods stay (as in production); only per-pod chains and rules must go.
func isSharedChain(rule string) bool {
	for _, c := range []string{"CNI-FORWARD", "CNI-ADMIN", "CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
		if strings.HasPrefix(rule, "-N "+c) || strings.HasPrefix(rule, ":"+c+" ") || strings.HasPrefix(rule, "-A "+c+" -m comment --comment \"CNI firewall plugin admin overrides\"") {
			return true
		}
		if strings.Contains(rule, "-j "+c) && !strings.Contains(rule, "CNI-DN-") {
			return true
		}
	}
	return false
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

func iptablesRules(t *testing.T) []string {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "#") || l == "COMMIT" || strings.HasPrefix(l, "*") {
			continue
		}
		rules = append(rules, counters.ReplaceAllString(l, ""))
	}
	sort.Strings(rules)
	return rules
}
