// Package cgroupstats reads the CPU, memory and process figures of one
// cgroup, on cgroup v1 (legacy or hybrid hosts) and v2 (unified hosts),
// through github.com/containerd/cgroups/v3, and turns them into the
// neutral figures the CRI reports: cumulative CPU time, the kubelet's
// working set, RSS, page faults, the memory left under a limit, the number
// of processes. ReadDetailed adds what the cAdvisor metrics need (Detail).
//
// Nothing here polls: a figure is read when asked for. The one thing kept
// between two requests is the previous CPU sample per id (Rates), from
// which the CPU usage rate is derived, as cAdvisor and containerd do.
package cgroupstats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/cgroups/v3/cgroup2"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
)

// ErrNoCgroup is returned (wrapped) when the cgroup does not exist: the
// container never ran, or has exited and its cgroup was removed.
var ErrNoCgroup = errors.New("cgroup does not exist")

// Sample is one reading of a cgroup.
type Sample struct {
	// Time is when the files were read.
	Time time.Time
	// CPUNanos is the cumulative CPU time of every task, in ns.
	CPUNanos uint64
	Memory   Memory
	// Pids is the number of tasks (pids.current); 0 if the pids
	// controller is not available.
	Pids uint64
	// Detail is nil from Read, set by ReadDetailed.
	Detail *Detail
}

// Memory holds the memory figures of a sample, in bytes.
type Memory struct {
	// Usage is memory.usage_in_bytes (v1) or memory.current (v2).
	Usage uint64
	// WorkingSet is what the kubelet evicts on: Usage minus the inactive
	// file cache, floored at 0.
	WorkingSet uint64
	// RSS is anonymous memory (v1 total_rss, v2 anon).
	RSS uint64
	// PageFaults and MajorPageFaults are cumulative counts.
	PageFaults, MajorPageFaults uint64
	// Limit is the cgroup's limit, 0 when unlimited.
	Limit uint64
}

// Available is the memory left before the limit, when there is one.
func (m Memory) Available() (uint64, bool) { return Available(m.Limit, m.WorkingSet) }

// WorkingSet is usage minus the inactive file cache, floored at 0, the way
// the kubelet (and cAdvisor) compute container_memory_working_set_bytes:
// inactive page cache can be reclaimed under pressure without an OOM kill.
func WorkingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// unlimited is the smallest limit taken to mean "no limit": v1 reports
// PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 on 4 KiB pages), v2 "max",
// which the library reads as math.MaxUint64.
const unlimited = 1 << 62

// Available is limit - workingSet (floored at 0) when limit is a real
// limit; ok is false without one.
func Available(limit, workingSet uint64) (avail uint64, ok bool) {
	if limit == 0 || limit >= unlimited {
		return 0, false
	}
	if workingSet >= limit {
		return 0, true
	}
	return limit - workingSet, true
}

// FromV1 converts cgroup v1 metrics. The hierarchical totals (total_*)
// are used so that sub-cgroups count, as the kubelet does.
func FromV1(m *v1stats.Metrics) (cpu uint64, mem Memory, pids uint64) {
	if m == nil {
		return 0, Memory{}, 0
	}
	if u := m.GetCPU().GetUsage(); u != nil {
		cpu = u.Total
	}
	if ms := m.GetMemory(); ms != nil {
		usage := ms.GetUsage().GetUsage()
		mem = Memory{
			Usage:           usage,
			WorkingSet:      WorkingSet(usage, ms.TotalInactiveFile),
			RSS:             ms.TotalRSS,
			PageFaults:      ms.TotalPgFault,
			MajorPageFaults: ms.TotalPgMajFault,
			Limit:           limitOrZero(ms.GetUsage().GetLimit()),
		}
	}
	if p := m.GetPids(); p != nil {
		pids = p.Current
	}
	return cpu, mem, pids
}

// FromV2 converts cgroup v2 metrics.
func FromV2(m *v2stats.Metrics) (cpu uint64, mem Memory, pids uint64) {
	if m == nil {
		return 0, Memory{}, 0
	}
	if c := m.GetCPU(); c != nil {
		cpu = c.UsageUsec * 1000
	}
	if ms := m.GetMemory(); ms != nil {
		mem = Memory{
			Usage:           ms.Usage,
			WorkingSet:      WorkingSet(ms.Usage, ms.InactiveFile),
			RSS:             ms.Anon,
			PageFaults:      ms.Pgfault,
			MajorPageFaults: ms.Pgmajfault,
			Limit:           limitOrZero(ms.UsageLimit),
		}
	}
	if p := m.GetPids(); p != nil {
		pids = p.Current
	}
	return cpu, mem, pids
}

// Read reads the cgroup at group, a path relative to the cgroup
// hierarchies' roots ("/berth/<id>"; see Group for an OCI cgroupsPath).
// The host's mode picks the API: v2 on unified hosts, v1 on legacy and
// hybrid ones (where runc puts the controllers in the v1 hierarchies).
// A missing cgroup gives an error wrapping ErrNoCgroup.
func Read(group string) (Sample, error) { return read(group, false) }

func read(group string, detailed bool) (Sample, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return readV2At(unifiedMount, group, detailed)
	case cgroups.Legacy, cgroups.Hybrid:
		return readV1(group, detailed)
	}
	return Sample{}, fmt.Errorf("cgroup %s: no cgroup file system mounted: %w", group, ErrNoCgroup)
}

// v1Hierarchy is the subsystems stats need (cpuacct, memory, pids):
// reading only three controllers keeps a stats call cheap.
var v1Hierarchy = v1Subsystems(cgroup1.Cpuacct, cgroup1.Memory, cgroup1.Pids)

// v1Subsystems returns the hierarchy of the named v1 controllers, found
// once from /proc/self/mountinfo: the mounts do not change under berthd.
func v1Subsystems(names ...cgroup1.Name) func() ([]cgroup1.Subsystem, error) {
	return sync.OnceValues(func() ([]cgroup1.Subsystem, error) {
		all, err := cgroup1.Default()
		if err != nil {
			return nil, err
		}
		var keep []cgroup1.Subsystem
		for _, s := range all {
			if slices.Contains(names, s.Name()) {
				keep = append(keep, s)
			}
		}
		return keep, nil
	})
}

func readV1(group string, detailed bool) (Sample, error) {
	hierarchy := v1Hierarchy
	if detailed {
		hierarchy = v1DetailHierarchy
	}
	subsystems, err := hierarchy()
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup v1 hierarchy: %w", err)
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(group),
		cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return subsystems, nil }))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) || errors.Is(err, fs.ErrNotExist) {
		return Sample{}, fmt.Errorf("cgroup %s: %w", group, ErrNoCgroup)
	}
	if err != nil {
		return Sample{}, fmt.Errorf("loading cgroup %s: %w", group, err)
	}
	now := time.Now()
	// IgnoreNotExist: memory.memsw.* is absent without swap accounting,
	// and a cgroup may vanish half way through when its last task exits.
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Sample{}, fmt.Errorf("reading cgroup %s: %w", group, err)
	}
	s := Sample{Time: now}
	s.CPUNanos, s.Memory, s.Pids = FromV1(m)
	if detailed {
		s.Detail = detailV1(cg, group, m, now)
	}
	return s, nil
}

// unifiedMount is where a unified host mounts cgroup2.
const unifiedMount = "/sys/fs/cgroup"

func readV2At(mount, group string, detailed bool) (Sample, error) {
	cg, err := cgroup2.Load(group, cgroup2.WithMountpoint(mount))
	if err != nil {
		return Sample{}, fmt.Errorf("loading cgroup %s: %w", group, err)
	}
	if _, err := os.Stat(path.Join(mount, group)); errors.Is(err, fs.ErrNotExist) {
		return Sample{}, fmt.Errorf("cgroup %s: %w", group, ErrNoCgroup)
	}
	now := time.Now()
	mask := cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatPids
	if detailed {
		mask |= cgroup2.StatMemoryEvents | cgroup2.StatIO
	}
	m, err := cg.StatFiltered(mask)
	if err != nil {
		return Sample{}, fmt.Errorf("reading cgroup %s: %w", group, err)
	}
	s := Sample{Time: now}
	s.CPUNanos, s.Memory, s.Pids = FromV2(m)
	if detailed {
		s.Detail = detailV2(cg, path.Join(mount, group), m, now)
	}
	return s, nil
}

// Group turns an OCI linux.cgroupsPath into the cgroup's path below the
// hierarchy roots: "/parent/id" for cgroupfs stays as it is;
// "slice:prefix:name" (the systemd driver) becomes the path systemd gives
// the scope, "/a.slice/a-b.slice/prefix-name.scope", as runc computes it.
func Group(systemd bool, cgroupsPath string) string {
	if !systemd {
		if !strings.HasPrefix(cgroupsPath, "/") {
			cgroupsPath = "/" + cgroupsPath
		}
		return path.Clean(cgroupsPath)
	}
	parts := strings.SplitN(cgroupsPath, ":", 3)
	if len(parts) != 3 {
		return path.Clean("/" + cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		unit = name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
	}
	return path.Join(ExpandSlice(slice), unit)
}

// ParentGroup is the cgroup of a pod's cgroup parent: a cgroupfs path, or
// a systemd slice name expanded to its path.
func ParentGroup(systemd bool, parent string) string {
	if systemd {
		return ExpandSlice(path.Base(parent))
	}
	return Group(false, parent)
}

// ExpandSlice turns a systemd slice name into its cgroup path: each dash
// nests ("kubepods-burstable-pod1.slice" →
// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice");
// "-.slice" is the root.
func ExpandSlice(slice string) string {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || name == "-" || name == "" {
		if !ok {
			return path.Clean("/" + slice)
		}
		return "/"
	}
	var p, prefix string
	for _, comp := range strings.Split(name, "-") {
		if comp == "" {
			continue
		}
		prefix += comp
		p += "/" + prefix + ".slice"
		prefix += "-"
	}
	return p
}
