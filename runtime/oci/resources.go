package oci

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Supported returns the part of r that this host's cgroups can apply, and
// what it left out ("hugetlb", "memory swap", "unified memory.high", …).
// The kubelet sends limits for every controller it knows (a 0 hugepage
// limit in every container), and runc fails the whole container on one it
// cannot set; containerd drops them the same way
// (tolerate_missing_hugetlb_controller, swap without accounting). r is not
// modified. With h.Controllers nil (unknown) nothing is dropped.
func Supported(r *specs.LinuxResources, h Host) (*specs.LinuxResources, []string) {
	if r == nil || h.Controllers == nil {
		return r, nil
	}
	out := *r
	var dropped []string
	drop := func(what string) { dropped = append(dropped, what) }
	has := func(c string) bool { return h.Controllers[c] }

	if len(out.HugepageLimits) > 0 && !has("hugetlb") {
		out.HugepageLimits = nil
		drop("hugetlb")
	}
	if out.Pids != nil && !has("pids") {
		out.Pids = nil
		drop("pids")
	}
	if out.Memory != nil {
		if !has("memory") {
			if !emptyMemory(out.Memory) {
				drop("memory")
			}
			out.Memory = nil
		} else if out.Memory.Swap != nil && !h.SwapAccounting {
			mem := *out.Memory
			mem.Swap = nil
			out.Memory = &mem
			drop("memory swap")
		}
	}
	if c := out.CPU; c != nil {
		cpu := *c
		if !has("cpu") && (cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Burst != nil ||
			cpu.RealtimeRuntime != nil || cpu.RealtimePeriod != nil || cpu.Idle != nil) {
			cpu.Shares, cpu.Quota, cpu.Period, cpu.Burst, cpu.RealtimeRuntime, cpu.RealtimePeriod, cpu.Idle = nil, nil, nil, nil, nil, nil, nil
			drop("cpu")
		}
		if !has("cpuset") && (cpu.Cpus != "" || cpu.Mems != "") {
			cpu.Cpus, cpu.Mems = "", ""
			drop("cpuset")
		}
		out.CPU = &cpu
	}
	if out.BlockIO != nil && !has(blockController(h)) {
		out.BlockIO = nil
		drop(blockController(h))
	}
	if out.Network != nil && (h.CgroupV2 || !has("net_cls") && !has("net_prio")) {
		// cgroup v2 has no network controller.
		out.Network = nil
		drop("network")
	}
	if len(out.Rdma) > 0 && !has("rdma") {
		out.Rdma = nil
		drop("rdma")
	}
	if len(out.Unified) > 0 {
		unified := maps.Clone(out.Unified)
		for _, key := range slices.Sorted(maps.Keys(unified)) {
			// memory.high belongs to memory; cgroup.* files are the core's.
			ctrl, _, _ := strings.Cut(key, ".")
			if !h.CgroupV2 || ctrl != "cgroup" && !has(ctrl) {
				delete(unified, key)
				drop("unified " + key)
			}
		}
		out.Unified = unified
	}
	return &out, dropped
}

func emptyMemory(m *specs.LinuxMemory) bool {
	return *m == specs.LinuxMemory{}
}

func blockController(h Host) string {
	if h.CgroupV2 {
		return "io"
	}
	return "blkio"
}

// cgroupControllers reads which controllers this host can apply: on cgroup
// v2 those enabled in the root (cgroup.controllers); on v1 (or hybrid)
// those with a mounted hierarchy, which is what runc writes to — a
// controller the kernel has but nobody mounted cannot be used. swap reports
// whether memory swap limits can be set (swap accounting). nil when
// nothing could be read.
func cgroupControllers(v2 bool) (ctrls map[string]bool, swap bool) {
	if v2 {
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			return nil, false
		}
		ctrls = map[string]bool{}
		for _, c := range strings.Fields(string(b)) {
			ctrls[c] = true
		}
		// The root cgroup has no memory.swap.max; a child does when swap
		// accounting is on. Our own cgroup is one.
		if own, err := ownCgroupV2(); err == nil && own != "/" {
			_, err := os.Stat(filepath.Join("/sys/fs/cgroup", own, "memory.swap.max"))
			swap = err == nil
		}
		return ctrls, swap
	}
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil || len(infos) == 0 {
		return nil, false
	}
	ctrls = map[string]bool{}
	for _, m := range infos {
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			ctrls[opt] = true
		}
		if slices.Contains(strings.Split(m.VFSOptions, ","), "memory") {
			_, err := os.Stat(filepath.Join(m.Mountpoint, "memory.memsw.limit_in_bytes"))
			swap = err == nil
		}
	}
	for _, notController := range []string{"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"} {
		delete(ctrls, notController)
	}
	return ctrls, swap
}

// ownCgroupV2 is this process's cgroup path on the unified hierarchy.
func ownCgroupV2() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "/", nil
}
