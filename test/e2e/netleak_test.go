package e2e

import (
	"crypto/sha512"
	"fmt"
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

	"github.com/berth-runtime/berth/cni"
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
	// A rule or chain is this test's if it names its subnet or a chain
	// the plugins made for one of its pods (named after the network and
	// the pod's id); anything else on the host (other runtimes) is not.
	var ids []string
	mine := func(rules []string) []string {
		chains := map[string]bool{}
		for _, id := range ids {
			for _, c := range podChains(id) {
				chains[c] = true
			}
		}
		var out []string
		for _, r := range rules {
			keep := strings.Contains(r, subnet.String())
			for c := range chains {
				keep = keep || strings.Contains(r, c)
			}
			if keep {
				out = append(out, r)
			}
		}
		return out
	}
	for i := 0; i < cycles; i++ {
		pod := podConfig(t, "cycle-"+strconv.Itoa(i))
		pod.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 12090}}
		id := runPod(t, d, pod)
		ids = append(ids, id)
		if i == 0 {
			// The chain names are right: the live pod's chains show.
			live := strings.Join(iptablesRules(t), "\n")
			for _, c := range podChains(id) {
				if !strings.Contains(live, c) {
					t.Fatalf("chain %s of a live pod not found: the naming rule is wrong", c)
				}
			}
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

// podChains are the per-pod chains the bridge (ipMasq) and portmap
// plugins create: a prefix and the sha512 of network name + container id,
// cut to iptables' 28 characters.
func podChains(id string) []string {
	sum := fmt.Sprintf("%x", sha512.Sum512([]byte(cni.DefaultNetworkName+id)))
	return []string{("CNI-" + sum)[:28], ("CNI-DN-" + sum)[:28]}
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
