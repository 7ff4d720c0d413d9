package cgroupstats

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/cgroups/v3/cgroup2"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
)

// ReadDetailed reads what the cAdvisor metrics need beyond Read's
// figures (Sample.Detail): CPU time by mode, CFS throttling, the
// configured CPU period and shares, page cache, swap, kernel memory, OOM
// kills, tasks and their open files, block I/O. It loads more controllers
// (v1: cpu and blkio as well) and walks /proc for the cgroup's processes,
// so only ListPodSandboxMetrics uses it; the stats RPCs keep to Read.
func ReadDetailed(group string) (Sample, error) { return read(group, true) }

// Detail holds the figures ReadDetailed adds to a Sample. A Has* flag
// false means the controller or file is not there, not a zero.
type Detail struct {
	// Time is when the files were read.
	Time   time.Time
	CPU    CPUDetail
	Memory MemoryDetail
	Tasks  Tasks
	// IO is the block I/O per device (v1 blkio, v2 io.stat): only the
	// devices the kernel accounted I/O to, sorted by major and minor.
	IO []IODevice
}

// CPUDetail is the CPU figures beyond the cumulative total.
type CPUDetail struct {
	// HasUsage says UserNanos and SystemNanos were read (v1 cpuacct.stat,
	// v2 cpu.stat user_usec and system_usec).
	HasUsage                  bool
	UserNanos, SystemNanos    uint64
	HasThrottling             bool
	Periods, ThrottledPeriods uint64
	// ThrottledNanos is v1 throttled_time (ns), v2 throttled_usec × 1000.
	ThrottledNanos uint64
	// HasSpec says PeriodMicros and Shares were read: v1
	// cpu.cfs_period_us and cpu.shares; v2 cpu.max's period and cpu.weight
	// turned back into shares the way cAdvisor does.
	HasSpec              bool
	PeriodMicros, Shares uint64
}

// MemoryDetail is the memory figures beyond Memory, in bytes or counts.
type MemoryDetail struct {
	// Has says the memory controller was read.
	Has bool
	// Cache is v1 total_cache, v2 file; MappedFile v1 total_mapped_file,
	// v2 file_mapped.
	Cache, MappedFile uint64
	// Swap is v1 total_swap, v2 memory.swap.current; SwapLimit is v1
	// memory.memsw.limit_in_bytes (memory + swap), v2 memory.swap.max, 0
	// when unlimited.
	Swap, SwapLimit uint64
	// Kernel is v1 memory.kmem.usage_in_bytes, v2 memory.stat kernel
	// (kernel_stack + slab on kernels before 5.18).
	Kernel uint64
	// MaxUsage is v1 memory.max_usage_in_bytes, v2 memory.peak (0 on
	// kernels without it).
	MaxUsage uint64
	// Failcnt is v1 memory.failcnt, v2 memory.events max: the times the
	// limit was hit.
	Failcnt uint64
	// OOMKills is v1 memory.oom_control oom_kill, v2 memory.events
	// oom_kill.
	OOMKills uint64
	// LocalPageFaults and LocalMajorPageFaults are the cgroup's own (v1
	// pgfault, pgmajfault, without sub-cgroups; v2 has only the
	// hierarchical figures, which Memory holds).
	LocalPageFaults, LocalMajorPageFaults uint64
}

// Tasks is what runs in the cgroup (and its sub-cgroups).
type Tasks struct {
	// HasPids says Threads and ThreadsMax were read: pids.current and
	// pids.max, which is 0 for "max", as cAdvisor reports no limit.
	HasPids             bool
	Threads, ThreadsMax uint64
	// HasProcs says cgroup.procs was read; Processes is its length,
	// FileDescriptors and Sockets the entries and "socket:[…]" links in
	// those processes' /proc/<pid>/fd.
	HasProcs                            bool
	Processes, FileDescriptors, Sockets uint64
}

// IODevice is one device's block I/O.
type IODevice struct {
	// Device is the device node ("/dev/vda"), or "major:minor" when
	// /proc/partitions does not name it.
	Device       string
	Major, Minor uint64
	// Bytes and Ops are by operation as the kernel names them: v1
	// blkio's Read, Write, Sync, Async, Discard, Total; v2 Read, Write.
	Bytes, Ops map[string]uint64
}

// v1DetailHierarchy adds the cpu (throttling, period, shares) and blkio
// controllers to v1Hierarchy's.
var v1DetailHierarchy = v1Subsystems(cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory, cgroup1.Pids, cgroup1.Blkio)

// procRoot is where the processes' fd directories are read.
const procRoot = "/proc"

func detailV1(cg cgroup1.Cgroup, group string, m *v1stats.Metrics, now time.Time) *Detail {
	d := &Detail{Time: now}
	dirs := map[cgroup1.Name]string{}
	for _, s := range cg.Subsystems() {
		if p, ok := s.(interface{ Path(string) string }); ok {
			dirs[s.Name()] = p.Path(group)
		}
	}
	if _, ok := dirs[cgroup1.Cpuacct]; ok && m.GetCPU().GetUsage() != nil {
		u := m.CPU.Usage
		d.CPU.HasUsage, d.CPU.UserNanos, d.CPU.SystemNanos = true, u.User, u.Kernel
	}
	if dir, ok := dirs[cgroup1.Cpu]; ok {
		if th := m.GetCPU().GetThrottling(); th != nil {
			d.CPU.HasThrottling = true
			d.CPU.Periods, d.CPU.ThrottledPeriods, d.CPU.ThrottledNanos = th.Periods, th.ThrottledPeriods, th.ThrottledTime
		}
		period, err1 := readUintFile(filepath.Join(dir, "cpu.cfs_period_us"))
		shares, err2 := readUintFile(filepath.Join(dir, "cpu.shares"))
		if err1 == nil && err2 == nil {
			d.CPU.HasSpec, d.CPU.PeriodMicros, d.CPU.Shares = true, period, shares
		}
	}
	if ms := m.GetMemory(); ms != nil {
		d.Memory = MemoryDetail{
			Has:                  true,
			Cache:                ms.TotalCache,
			MappedFile:           ms.TotalMappedFile,
			SwapLimit:            limitOrZero(ms.GetSwap().GetLimit()),
			Kernel:               ms.GetKernel().GetUsage(),
			MaxUsage:             ms.GetUsage().GetMax(),
			Failcnt:              ms.GetUsage().GetFailcnt(),
			OOMKills:             m.GetMemoryOomControl().GetOomKill(),
			LocalPageFaults:      ms.PgFault,
			LocalMajorPageFaults: ms.PgMajFault,
		}
		// The library does not keep total_swap (present with swap
		// accounting; absent, nothing is swapped out of the cgroup's
		// account).
		if dir, ok := dirs[cgroup1.Memory]; ok {
			if kv, err := readKeys(filepath.Join(dir, "memory.stat"), "total_swap"); err == nil {
				d.Memory.Swap = kv["total_swap"]
			}
		}
	}
	if p := m.GetPids(); p != nil {
		if _, ok := dirs[cgroup1.Pids]; ok {
			d.Tasks.HasPids, d.Tasks.Threads, d.Tasks.ThreadsMax = true, p.Current, limitOrZero(p.Limit)
		}
	}
	for _, name := range []cgroup1.Name{cgroup1.Memory, cgroup1.Pids, cgroup1.Cpuacct} {
		if _, ok := dirs[name]; !ok {
			continue
		}
		procs, err := cg.Processes(name, true)
		if err != nil {
			continue
		}
		pids := make([]uint64, 0, len(procs))
		for _, p := range procs {
			pids = append(pids, uint64(p.Pid))
		}
		d.Tasks.setProcs(procRoot, pids)
		break
	}
	if b := m.GetBlkio(); b != nil {
		d.IO = ioV1(b.IoServiceBytesRecursive, b.IoServicedRecursive)
	}
	return d
}

// ioV1 groups blkio entries by device.
func ioV1(bytes, ops []*v1stats.BlkIOEntry) []IODevice {
	devs := map[[2]uint64]*IODevice{}
	get := func(e *v1stats.BlkIOEntry) *IODevice {
		k := [2]uint64{e.Major, e.Minor}
		d := devs[k]
		if d == nil {
			d = &IODevice{Device: e.Device, Major: e.Major, Minor: e.Minor, Bytes: map[string]uint64{}, Ops: map[string]uint64{}}
			devs[k] = d
		}
		return d
	}
	for _, e := range bytes {
		if e.Op != "" {
			get(e).Bytes[e.Op] = e.Value
		}
	}
	for _, e := range ops {
		if e.Op != "" {
			get(e).Ops[e.Op] = e.Value
		}
	}
	return sortDevices(devs)
}

func detailV2(cg *cgroup2.Manager, dir string, m *v2stats.Metrics, now time.Time) *Detail {
	d := &Detail{Time: now}
	if c := m.GetCPU(); c != nil {
		d.CPU.HasUsage, d.CPU.UserNanos, d.CPU.SystemNanos = true, c.UserUsec*1000, c.SystemUsec*1000
		// cpu.max is there when the cpu controller is enabled, and with
		// it cpu.stat's nr_periods and throttling figures.
		if raw, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
			d.CPU.HasThrottling = true
			d.CPU.Periods, d.CPU.ThrottledPeriods, d.CPU.ThrottledNanos = c.NrPeriods, c.NrThrottled, c.ThrottledUsec*1000
			f := strings.Fields(string(raw))
			weight, err := readUintFile(filepath.Join(dir, "cpu.weight"))
			if len(f) == 2 && err == nil {
				if period, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					d.CPU.HasSpec, d.CPU.PeriodMicros, d.CPU.Shares = true, period, SharesFromWeight(weight)
				}
			}
		}
	}
	if ms := m.GetMemory(); ms != nil {
		if _, err := os.Stat(filepath.Join(dir, "memory.current")); err == nil {
			d.Memory = MemoryDetail{
				Has:                  true,
				Cache:                ms.File,
				MappedFile:           ms.FileMapped,
				Swap:                 ms.SwapUsage,
				SwapLimit:            limitOrZero(ms.SwapLimit),
				Kernel:               ms.KernelStack + ms.Slab,
				MaxUsage:             ms.MaxUsage,
				Failcnt:              m.GetMemoryEvents().GetMax(),
				OOMKills:             m.GetMemoryEvents().GetOomKill(),
				LocalPageFaults:      ms.Pgfault,
				LocalMajorPageFaults: ms.Pgmajfault,
			}
			if kv, err := readKeys(filepath.Join(dir, "memory.stat"), "kernel"); err == nil {
				if k, ok := kv["kernel"]; ok {
					d.Memory.Kernel = k
				}
			}
		}
	}
	if p := m.GetPids(); p != nil {
		if _, err := os.Stat(filepath.Join(dir, "pids.current")); err == nil {
			d.Tasks.HasPids, d.Tasks.Threads, d.Tasks.ThreadsMax = true, p.Current, limitOrZero(p.Limit)
		}
	}
	if pids, err := cg.Procs(true); err == nil {
		d.Tasks.setProcs(procRoot, pids)
	}
	if io := m.GetIo(); io != nil {
		d.IO = ioV2(io.Usage, partitions())
	}
	return d
}

// ioV2 turns io.stat entries into devices, named from names.
func ioV2(entries []*v2stats.IOEntry, names map[[2]uint64]string) []IODevice {
	devs := map[[2]uint64]*IODevice{}
	for _, e := range entries {
		k := [2]uint64{e.Major, e.Minor}
		devs[k] = &IODevice{
			Device: names[k], Major: e.Major, Minor: e.Minor,
			Bytes: map[string]uint64{"Read": e.Rbytes, "Write": e.Wbytes},
			Ops:   map[string]uint64{"Read": e.Rios, "Write": e.Wios},
		}
	}
	return sortDevices(devs)
}

func sortDevices(devs map[[2]uint64]*IODevice) []IODevice {
	var out []IODevice
	for _, d := range devs {
		if d.Device == "" {
			d.Device = fmt.Sprintf("%d:%d", d.Major, d.Minor)
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b IODevice) int {
		if a.Major != b.Major {
			return int(a.Major) - int(b.Major)
		}
		return int(a.Minor) - int(b.Minor)
	})
	return out
}

// partitions maps major:minor to /dev/<name> from /proc/partitions.
func partitions() map[[2]uint64]string {
	out := map[[2]uint64]string{}
	f, err := os.Open("/proc/partitions")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 4 {
			continue
		}
		major, err1 := strconv.ParseUint(fl[0], 10, 64)
		minor, err2 := strconv.ParseUint(fl[1], 10, 64)
		if err1 == nil && err2 == nil {
			out[[2]uint64{major, minor}] = path.Join("/dev", fl[3])
		}
	}
	return out
}

// SharesFromWeight turns a v2 cpu.weight (1–10000) back into v1 shares
// (2–262144), the inverse of the conversion runc applies, as cAdvisor
// reports container_spec_cpu_shares on v2.
func SharesFromWeight(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	return 2 + ((weight-1)*262142)/9999
}

// setProcs records the processes and counts their open files.
func (t *Tasks) setProcs(procRoot string, pids []uint64) {
	t.HasProcs, t.Processes = true, uint64(len(pids))
	t.FileDescriptors, t.Sockets = CountFDs(procRoot, pids)
}

// CountFDs counts the open file descriptors of pids, and among them the
// sockets (links "socket:[inode]"), from <procRoot>/<pid>/fd. A process
// that exits meanwhile counts nothing.
func CountFDs(procRoot string, pids []uint64) (fds, sockets uint64) {
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.FormatUint(pid, 10), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			fds++
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				sockets++
			}
		}
	}
	return fds, sockets
}

// limitOrZero turns the "no limit" readings (v1 0x7FFFFFFFFFFFF000 or
// "max" read as 0, v2 "max" read as MaxUint64) into 0.
func limitOrZero(v uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}

// readUintFile reads a cgroup file holding one number ("max" is
// math.MaxUint64; a negative number, v1's "-1", is 0).
func readUintFile(p string) (uint64, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	s := string(bytes.TrimSpace(raw))
	if s == "max" {
		return math.MaxUint64, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKeys reads the "key value" lines of p named in keys.
func readKeys(p string, keys ...string) (map[string]uint64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", p, k, err)
		}
		out[k] = n
	}
	return out, sc.Err()
}
