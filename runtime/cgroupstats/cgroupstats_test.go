package cgroupstats

import (
	"math"
	"testing"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/google/go-cmp/cmp"
)

func TestWorkingSet(t *testing.T) {
	for _, tc := range []struct {
		name                string
		usage, inactive, ws uint64
	}{
		{"no cache", 100 << 20, 0, 100 << 20},
		{"some inactive file", 100 << 20, 30 << 20, 70 << 20},
		{"all inactive", 50 << 20, 50 << 20, 0},
		// Usage and memory.stat are read apart; the kubelet floors at 0.
		{"inactive above usage", 10 << 20, 12 << 20, 0},
		{"zero", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WorkingSet(tc.usage, tc.inactive); got != tc.ws {
				t.Errorf("WorkingSet(%d, %d) = %d, want %d", tc.usage, tc.inactive, got, tc.ws)
			}
		})
	}
}

func TestAvailable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit, ws uint64
		avail     uint64
		ok        bool
	}{
		{"limited", 256 << 20, 100 << 20, 156 << 20, true},
		{"at the limit", 64 << 20, 64 << 20, 0, true},
		{"no limit", 0, 10, 0, false},
		{"v1 unlimited", 0x7FFFFFFFFFFFF000, 10, 0, false},
		{"v2 max", math.MaxUint64, 10, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			avail, ok := Available(tc.limit, tc.ws)
			if avail != tc.avail || ok != tc.ok {
				t.Errorf("Available(%d, %d) = %d, %v; want %d, %v", tc.limit, tc.ws, avail, ok, tc.avail, tc.ok)
			}
		})
	}
}

func TestFromV1(t *testing.T) {
	m := &v1stats.Metrics{
		CPU: &v1stats.CPUStat{Usage: &v1stats.CPUUsage{Total: 1_500_000_000}},
		Memory: &v1stats.MemoryStat{
			Usage:             &v1stats.MemoryEntry{Usage: 48 << 20, Limit: 0x7FFFFFFFFFFFF000},
			TotalInactiveFile: 8 << 20,
			TotalRSS:          4 << 20,
			TotalPgFault:      1000,
			TotalPgMajFault:   3,
			// The non-hierarchical figures must not be used.
			InactiveFile: 1, RSS: 1,
		},
		Pids: &v1stats.PidsStat{Current: 5},
	}
	cpu, mem, pids := FromV1(m)
	want := Memory{Usage: 48 << 20, WorkingSet: 40 << 20, RSS: 4 << 20, PageFaults: 1000, MajorPageFaults: 3}
	if cpu != 1_500_000_000 || pids != 5 {
		t.Errorf("cpu, pids = %d, %d", cpu, pids)
	}
	if diff := cmp.Diff(want, mem); diff != "" {
		t.Errorf("memory (-want +got):\n%s", diff)
	}
	if _, ok := mem.Available(); ok {
		t.Error("unlimited v1 cgroup has an available figure")
	}
	if cpu, mem, pids := FromV1(nil); cpu != 0 || mem != (Memory{}) || pids != 0 {
		t.Error("FromV1(nil) is not zero")
	}
}

func TestFromV2(t *testing.T) {
	m := &v2stats.Metrics{
		CPU: &v2stats.CPUStat{UsageUsec: 2_000_000},
		Memory: &v2stats.MemoryStat{
			Usage: 100 << 20, UsageLimit: 128 << 20, InactiveFile: 36 << 20, Anon: 60 << 20,
			Pgfault: 42, Pgmajfault: 1,
		},
		Pids: &v2stats.PidsStat{Current: 2},
	}
	cpu, mem, pids := FromV2(m)
	want := Memory{Usage: 100 << 20, WorkingSet: 64 << 20, RSS: 60 << 20, PageFaults: 42, MajorPageFaults: 1, Limit: 128 << 20}
	if cpu != 2_000_000_000 || pids != 2 {
		t.Errorf("cpu, pids = %d, %d", cpu, pids)
	}
	if diff := cmp.Diff(want, mem); diff != "" {
		t.Errorf("memory (-want +got):\n%s", diff)
	}
	if avail, ok := mem.Available(); !ok || avail != 64<<20 {
		t.Errorf("Available = %d, %v; want 64 MiB", avail, ok)
	}
}

func TestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		prev, cur uint64
		dt        time.Duration
		want      uint64
		ok        bool
	}{
		{"one core", 0, 2e9, 2 * time.Second, 1e9, true},
		{"quarter core", 5e9, 5e9 + 250e6, time.Second, 250e6, true},
		{"two cores over 500ms", 1e9, 2e9, 500 * time.Millisecond, 2e9, true},
		{"idle", 7, 7, time.Second, 0, true},
		{"no time passed", 0, 10, 0, 0, false},
		{"clock went back", 0, 10, -time.Second, 0, false},
		{"counter went back", 10e9, 1e9, time.Second, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Rate(tc.prev, t0, tc.cur, t0.Add(tc.dt))
			if got != tc.want || ok != tc.ok {
				t.Errorf("Rate = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestRates(t *testing.T) {
	var r Rates
	t0 := time.Unix(1000, 0)
	if _, ok := r.NanoCores("a", 1e9, t0); ok {
		t.Error("first sample has a rate")
	}
	// Too soon: no new rate, and the kept sample stays.
	if _, ok := r.NanoCores("a", 1e9+5e6, t0.Add(10*time.Millisecond)); ok {
		t.Error("sample 10ms after the first has a rate")
	}
	got, ok := r.NanoCores("a", 1e9+500e6, t0.Add(time.Second))
	if !ok || got != 500e6 {
		t.Errorf("rate = %d, %v; want 500000000", got, ok)
	}
	// Within MinInterval of that: the same rate again.
	if got2, ok := r.NanoCores("a", 1e9+501e6, t0.Add(time.Second+time.Millisecond)); !ok || got2 != got {
		t.Errorf("rate soon after = %d, %v; want %d", got2, ok, got)
	}
	// Ids do not mix.
	if _, ok := r.NanoCores("b", 1, t0.Add(time.Second)); ok {
		t.Error("b's first sample has a rate")
	}
	// Stale ids are forgotten.
	r.NanoCores("c", 1, t0.Add(forgetAfter+2*time.Minute))
	if r.Len() != 1 {
		t.Errorf("Len after sweep = %d, want 1", r.Len())
	}
	r.Forget("c")
	if r.Len() != 0 {
		t.Errorf("Len after Forget = %d", r.Len())
	}
}

func TestGroup(t *testing.T) {
	for _, tc := range []struct {
		systemd     bool
		path, group string
	}{
		{false, "/berth/abc", "/berth/abc"},
		{false, "kubepods/pod1/abc", "/kubepods/pod1/abc"},
		{true, "system.slice:berth:abc", "/system.slice/berth-abc.scope"},
		{true, "kubepods-burstable-pod1.slice:berth:abc", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/berth-abc.scope"},
		{true, ":berth:abc", "/system.slice/berth-abc.scope"},
		{true, "-.slice:berth:abc", "/berth-abc.scope"},
	} {
		if got := Group(tc.systemd, tc.path); got != tc.group {
			t.Errorf("Group(%v, %q) = %q, want %q", tc.systemd, tc.path, got, tc.group)
		}
	}
	if got := ParentGroup(true, "kubepods-besteffort-pod2.slice"); got != "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2.slice" {
		t.Errorf("ParentGroup systemd = %q", got)
	}
	if got := ParentGroup(false, "kubepods/besteffort/pod2"); got != "/kubepods/besteffort/pod2" {
		t.Errorf("ParentGroup cgroupfs = %q", got)
	}
}
