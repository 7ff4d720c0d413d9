package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/store"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     560       8    0    0    0     0          0         0      560       8    0    0    0     0       0          0
  eth0: 1234567    1000    2    7    0     0          0         0   765432     900    1    3    0     0       0          0
 net1:       5       1    0    0    0     0          0         0        6       1    0    0    0     0       0          0
`

func TestParseNetDev(t *testing.T) {
	got, err := ParseNetDev(strings.NewReader(netDev))
	if err != nil {
		t.Fatal(err)
	}
	want := []InterfaceStats{
		{Name: "eth0", RxBytes: 1234567, RxErrors: 2, TxBytes: 765432, TxErrors: 1, RxPackets: 1000, RxDropped: 7, TxPackets: 900, TxDropped: 3},
		{Name: "net1", RxBytes: 5, TxBytes: 6, RxPackets: 1, TxPackets: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	n := &NetworkStats{Interfaces: got}
	if d, ok := n.Default(); !ok || d.Name != "eth0" {
		t.Errorf("Default = %+v, %v", d, ok)
	}
	for _, bad := range []string{"h1\nh2\neth0 1 2 3\n", "h1\nh2\neth0: 1 2 3\n", "h1\nh2\neth0: x 0 0 0 0 0 0 0 0 0 0 0\n"} {
		if _, err := ParseNetDev(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseNetDev(%q) did not fail", bad)
		}
	}
}

func TestAddSamples(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := cgroupstats.Sample{Time: t0, CPUNanos: 10, Pids: 1, Memory: cgroupstats.Memory{Usage: 100, WorkingSet: 80, RSS: 50, PageFaults: 3, MajorPageFaults: 1, Limit: 1000}}
	b := cgroupstats.Sample{Time: t0.Add(time.Millisecond), CPUNanos: 5, Pids: 2, Memory: cgroupstats.Memory{Usage: 10, WorkingSet: 10, RSS: 5, PageFaults: 1}}
	got := addSamples(addSamples(cgroupstats.Sample{}, a), b)
	want := cgroupstats.Sample{Time: t0.Add(time.Millisecond), CPUNanos: 15, Pids: 3, Memory: cgroupstats.Memory{Usage: 110, WorkingSet: 90, RSS: 55, PageFaults: 4, MajorPageFaults: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestStatsPassPodContext checks that the sandbox manager gives runtime
// each container's pod cgroup parent and only the pod's own containers:
// runtime no longer reads sandbox records, so a wrong parent here would
// read a wrong (or no) cgroup.
func TestStatsPassPodContext(t *testing.T) {
	ctx := context.Background()
	// Neither pod is ready, so no cgroup or netns of the host is read.
	pods := []store.Sandbox{{ID: "pa", CgroupParent: "/kubepods/pa"}, {ID: "pb"}}
	db := podStore(t, pods...)
	fake := &fakeContainers{all: []store.Container{
		{ID: "c1", SandboxID: "pa"}, {ID: "c2", SandboxID: "pb"}, {ID: "c3", SandboxID: "gone"}, {ID: "c4", SandboxID: "pa"},
	}}
	m := &Manager{db: db, containers: fake, log: slog.New(slog.DiscardHandler)}
	rates := &cgroupstats.Rates{}
	ids := func(cs []store.Container) (out []string) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	type req struct {
		IDs      []string
		Parents  map[string]string
		HasRates bool
		Detailed bool
	}
	last := func() req {
		r := fake.reqs[len(fake.reqs)-1]
		return req{ids(r.Containers), r.CgroupParents, r.Rates != nil, r.Detailed}
	}

	if st, err := m.ContainerStats(ctx, "c1", rates); err != nil || st.Container.ID != "c1" {
		t.Fatalf("ContainerStats(c1) = %v, %v", st.Container.ID, err)
	}
	if diff := cmp.Diff(req{[]string{"c1"}, map[string]string{"pa": "/kubepods/pa"}, true, false}, last()); diff != "" {
		t.Errorf("ContainerStats(c1) request (-want +got):\n%s", diff)
	}
	if _, err := m.ContainerStats(ctx, "c3", rates); err != nil {
		t.Fatalf("ContainerStats of a container without a pod record: %v", err)
	}
	if diff := cmp.Diff(req{[]string{"c3"}, map[string]string{}, true, false}, last()); diff != "" {
		t.Errorf("ContainerStats(c3) request (-want +got):\n%s", diff)
	}
	if _, err := m.ContainerStats(ctx, "nosuch", rates); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("ContainerStats(nosuch) = %v, want NotFound", err)
	}

	sts, err := m.ListContainerStats(ctx, fake.all[:2], rates)
	if err != nil || len(sts) != 2 {
		t.Fatalf("ListContainerStats = %d, %v", len(sts), err)
	}
	if diff := cmp.Diff(req{[]string{"c1", "c2"}, map[string]string{"pa": "/kubepods/pa", "pb": ""}, true, false}, last()); diff != "" {
		t.Errorf("ListContainerStats request (-want +got):\n%s", diff)
	}

	pss, err := m.PodStats(ctx, pods, rates)
	if err != nil || len(pss) != 2 {
		t.Fatalf("PodStats = %d, %v", len(pss), err)
	}
	if diff := cmp.Diff([]string{"c1", "c4"}, containerIDs(pss[0])); diff != "" {
		t.Errorf("PodStats(pa) containers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(req{[]string{"c2"}, map[string]string{"pb": ""}, true, false}, last()); diff != "" {
		t.Errorf("PodStats(pb) request (-want +got):\n%s", diff)
	}
	if pss[0].CPU.Valid || pss[0].Network != nil {
		t.Errorf("PodStats of a pod that is not ready has figures: %+v", pss[0])
	}

	if _, err := m.PodMetrics(ctx, pods[:1]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req{[]string{"c1", "c4"}, map[string]string{"pa": "/kubepods/pa"}, false, true}, last()); diff != "" {
		t.Errorf("PodMetrics request (-want +got):\n%s", diff)
	}
}

func containerIDs(ps PodStats) (out []string) {
	for _, c := range ps.Containers {
		out = append(out, c.Container.ID)
	}
	return out
}
