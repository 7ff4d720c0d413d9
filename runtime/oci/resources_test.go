package oci

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

// everything asks for a limit of every kind, as the kubelet may.
func everything() *specs.LinuxResources {
	return &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](64 << 20)},
		CPU:            &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0", Mems: "0"},
		Pids:           &specs.LinuxPids{Limit: ptr[int64](100)},
		BlockIO:        &specs.LinuxBlockIO{Weight: ptr[uint16](500)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 0}},
		Network:        &specs.LinuxNetwork{ClassID: ptr[uint32](1)},
		Rdma:           map[string]specs.LinuxRdma{"mlx": {HcaHandles: ptr[uint32](1)}},
		Unified:        map[string]string{"memory.high": "1000000", "cgroup.freeze": "0"},
	}
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	allV1 = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "hugetlb", "net_cls", "net_prio", "rdma", "devices", "freezer"}
	allV2 = []string{"cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma"}
)

func without(all []string, name string) []string {
	var out []string
	for _, n := range all {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

func TestSupportedDropsPerController(t *testing.T) {
	for _, tc := range []struct {
		name        string
		host        Host
		wantDropped []string
		check       func(t *testing.T, r *specs.LinuxResources)
	}{
		{name: "v1 hugetlb not mounted", host: Host{Controllers: set(without(allV1, "hugetlb")...), SwapAccounting: true},
			wantDropped: []string{"hugetlb", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.HugepageLimits != nil {
					t.Error("hugepage limits kept")
				}
			}},
		{name: "v1 no pids", host: Host{Controllers: set(without(allV1, "pids")...), SwapAccounting: true},
			wantDropped: []string{"pids", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.Pids != nil {
					t.Error("pids kept")
				}
			}},
		{name: "v1 no memory", host: Host{Controllers: set(without(allV1, "memory")...), SwapAccounting: true},
			wantDropped: []string{"memory", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.Memory != nil {
					t.Error("memory kept")
				}
			}},
		{name: "v1 no swap accounting", host: Host{Controllers: set(allV1...)},
			wantDropped: []string{"memory swap", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.Memory.Swap != nil || r.Memory.Limit == nil {
					t.Errorf("memory = %+v, want the limit without swap", r.Memory)
				}
			}},
		{name: "v1 no cpu", host: Host{Controllers: set(without(allV1, "cpu")...), SwapAccounting: true},
			wantDropped: []string{"cpu", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.CPU.Shares != nil || r.CPU.Quota != nil || r.CPU.Period != nil || r.CPU.Cpus != "0" {
					t.Errorf("cpu = %+v, want only the cpuset", r.CPU)
				}
			}},
		{name: "v1 no cpuset", host: Host{Controllers: set(without(allV1, "cpuset")...), SwapAccounting: true},
			wantDropped: []string{"cpuset", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.CPU.Cpus != "" || r.CPU.Mems != "" || r.CPU.Shares == nil {
					t.Errorf("cpu = %+v, want shares without the cpuset", r.CPU)
				}
			}},
		{name: "v1 no blkio", host: Host{Controllers: set(without(allV1, "blkio")...), SwapAccounting: true},
			wantDropped: []string{"blkio", "unified cgroup.freeze", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.BlockIO != nil {
					t.Error("block IO kept")
				}
			}},
		{name: "v1 no net_cls/net_prio", host: Host{Controllers: set(without(without(allV1, "net_cls"), "net_prio")...), SwapAccounting: true},
			wantDropped: []string{"network", "unified cgroup.freeze", "unified memory.high"}},
		{name: "v1 no rdma", host: Host{Controllers: set(without(allV1, "rdma")...), SwapAccounting: true},
			wantDropped: []string{"rdma", "unified cgroup.freeze", "unified memory.high"}},
		{name: "v2 everything", host: Host{CgroupV2: true, Controllers: set(allV2...), SwapAccounting: true},
			wantDropped: []string{"network"}},
		{name: "v2 no hugetlb", host: Host{CgroupV2: true, Controllers: set(without(allV2, "hugetlb")...), SwapAccounting: true},
			wantDropped: []string{"hugetlb", "network"}},
		{name: "v2 no io", host: Host{CgroupV2: true, Controllers: set(without(allV2, "io")...), SwapAccounting: true},
			wantDropped: []string{"io", "network"}},
		{name: "v2 no memory", host: Host{CgroupV2: true, Controllers: set(without(allV2, "memory")...)},
			wantDropped: []string{"memory", "network", "unified memory.high"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if diff := cmp.Diff(map[string]string{"cgroup.freeze": "0"}, r.Unified); diff != "" {
					t.Errorf("unified (-want +got):\n%s", diff)
				}
			}},
		{name: "v2 no pids", host: Host{CgroupV2: true, Controllers: set(without(allV2, "pids")...), SwapAccounting: true},
			wantDropped: []string{"pids", "network"}},
		{name: "unknown host keeps all", host: Host{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := everything()
			got, dropped := Supported(in, tc.host)
			if diff := cmp.Diff(tc.wantDropped, dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(everything(), in); diff != "" {
				t.Errorf("the input was modified (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			if len(tc.wantDropped) == 0 {
				if diff := cmp.Diff(everything(), got); diff != "" {
					t.Errorf("with nothing dropped the result differs (-want +got):\n%s", diff)
				}
			}
		})
	}
}
