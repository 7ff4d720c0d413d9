package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/internal/netns"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/store"
)

// Stats are computed when asked for, never polled in the background: an
// idle berthd with a hundred containers does no work. The one piece of
// state is the caller's *cgroupstats.Rates, the previous CPU sample per
// container (and per pod, under "pod/<id>"), from which the CPU rate is
// derived; a nil Rates gives no rates.

// ContainerStats are a container's figures at one time. A container that
// is not running (created without a cgroup yet, exited, or gone between
// the lookup and the read) has CPU and Memory without figures.
type ContainerStats struct {
	Container store.Container
	CPU       CPUStats
	Memory    MemoryStats
	// WritableLayer is the container's overlay upper dir; nil if it is
	// gone.
	WritableLayer *LayerUsage
	// Detail is the cgroup's figures for the cAdvisor metrics; only
	// PodMetrics reads them (nil otherwise, and for a container that is
	// not running).
	Detail *cgroupstats.Detail
}

// CPUStats is a cgroup's CPU time.
type CPUStats struct {
	Time time.Time
	// Valid says the figures were read.
	Valid bool
	// UsageNanos is cumulative CPU time in ns.
	UsageNanos uint64
	// NanoCores is the rate since the previous request; HasRate is false
	// on the first request (see cgroupstats.Rates.NanoCores).
	NanoCores uint64
	HasRate   bool
}

// MemoryStats is a cgroup's memory.
type MemoryStats struct {
	Time  time.Time
	Valid bool
	cgroupstats.Memory
}

// LayerUsage is the disk use of a container's writable layer.
type LayerUsage struct {
	Time time.Time
	// Mountpoint is the directory of every container's writable layer,
	// as ImageFsInfo reports it for the container file system.
	Mountpoint    string
	Bytes, Inodes uint64
	// HasFs says the file system holding the layer was measured
	// (statfs): its size in bytes, its inodes and the free ones.
	HasFs                             bool
	Capacity, InodesTotal, InodesFree uint64
}

// PodStats are a pod's figures: its cgroup (the parent the kubelet gave,
// else the sum of the infra process's and the containers' cgroups), its
// network and its containers.
type PodStats struct {
	Sandbox store.Sandbox
	CPU     CPUStats
	Memory  MemoryStats
	// Processes is the number of tasks; ProcessesValid says it was read.
	ProcessesTime  time.Time
	Processes      uint64
	ProcessesValid bool
	// Network is nil for host-network pods and pods without a netns.
	Network    *NetworkStats
	Containers []ContainerStats
	// Detail is the pod cgroup's figures for the cAdvisor metrics, read
	// by PodMetrics when the pod has a cgroup of its own (a cgroup
	// parent); nil otherwise: figures added up across cgroups do not make
	// limits, periods or a process list.
	Detail *cgroupstats.Detail
}

// NetworkStats are the pod's interfaces, loopback left out.
type NetworkStats struct {
	Time       time.Time
	Interfaces []InterfaceStats
}

// Default is the pod's main interface (eth0, else the first one).
func (n *NetworkStats) Default() (InterfaceStats, bool) {
	for _, i := range n.Interfaces {
		if i.Name == "eth0" {
			return i, true
		}
	}
	if len(n.Interfaces) > 0 {
		return n.Interfaces[0], true
	}
	return InterfaceStats{}, false
}

// InterfaceStats are one interface's cumulative counters.
type InterfaceStats struct {
	Name                                 string
	RxBytes, RxErrors, TxBytes, TxErrors uint64
	RxPackets, RxDropped                 uint64
	TxPackets, TxDropped                 uint64
}

// statsWorkers bounds the containers read at once by a list.
const statsWorkers = 8

// ContainerStats reads one container's figures.
func (m *Manager) ContainerStats(ctx context.Context, id string, rates *cgroupstats.Rates) (ContainerStats, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return ContainerStats{}, err
	}
	parent := ""
	m.db.View(func(tx *store.Tx) error {
		if sb, err := store.Get[store.Sandbox](tx, store.Sandboxes, c.SandboxID); err == nil {
			parent = sb.CgroupParent
		}
		return nil
	})
	return m.containerStats(c, parent, rates, false), nil
}

// ListContainerStats reads the figures of cs, in that order.
func (m *Manager) ListContainerStats(ctx context.Context, cs []store.Container, rates *cgroupstats.Rates) []ContainerStats {
	parents := map[string]string{}
	m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Sandboxes, func(id string, sb store.Sandbox) error {
			parents[id] = sb.CgroupParent
			return nil
		})
	})
	return m.listContainerStats(cs, parents, rates, false)
}

// listContainerStats reads the figures of cs; parents are the cgroup
// parents of their sandboxes, by sandbox id.
func (m *Manager) listContainerStats(cs []store.Container, parents map[string]string, rates *cgroupstats.Rates, detailed bool) []ContainerStats {
	out := make([]ContainerStats, len(cs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsWorkers)
	for i, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = m.containerStats(c, parents[c.SandboxID], rates, detailed)
		}()
	}
	wg.Wait()
	return out
}

func (m *Manager) containerStats(c store.Container, cgroupParent string, rates *cgroupstats.Rates, detailed bool) ContainerStats {
	now := time.Now()
	st := ContainerStats{Container: c, CPU: CPUStats{Time: now}, Memory: MemoryStats{Time: now}}
	if s := StateOf(c); s == Running || s == Created {
		group := cgroupstats.Group(m.systemd, CgroupsPath(m.systemd, cgroupParent, c.ID))
		sample, err := readCgroup(group, detailed)
		switch {
		case err == nil:
			st.CPU, st.Memory = m.cpuMemory(c.ID, sample, rates)
			st.Detail = sample.Detail
		case errors.Is(err, cgroupstats.ErrNoCgroup):
			// Not running any more: no figures, as for an exited one.
		default:
			m.log.Warn("reading container stats", "container", c.ID[:min(12, len(c.ID))], "error", err)
		}
	}
	upper := filepath.Join(c.Dir, "upper")
	bytes, inodes, err := snapshot.Usage(upper)
	switch {
	case err == nil:
		st.WritableLayer = &LayerUsage{Time: time.Now(), Mountpoint: m.rootDir, Bytes: uint64(bytes), Inodes: uint64(inodes)}
		var sfs unix.Statfs_t
		if err := unix.Statfs(upper, &sfs); err == nil {
			l := st.WritableLayer
			l.HasFs = true
			l.Capacity = sfs.Blocks * uint64(sfs.Bsize)
			l.InodesTotal, l.InodesFree = sfs.Files, sfs.Ffree
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		m.log.Warn("measuring a writable layer", "container", c.ID[:min(12, len(c.ID))], "error", err)
	}
	return st
}

func (m *Manager) cpuMemory(key string, s cgroupstats.Sample, rates *cgroupstats.Rates) (CPUStats, MemoryStats) {
	cpu := CPUStats{Time: s.Time, Valid: true, UsageNanos: s.CPUNanos}
	if rates != nil {
		cpu.NanoCores, cpu.HasRate = rates.NanoCores(key, s.CPUNanos, s.Time)
	}
	return cpu, MemoryStats{Time: s.Time, Valid: true, Memory: s.Memory}
}

// readCgroup reads a cgroup, with the detail the metrics need when
// detailed.
func readCgroup(group string, detailed bool) (cgroupstats.Sample, error) {
	if detailed {
		return cgroupstats.ReadDetailed(group)
	}
	return cgroupstats.Read(group)
}

// PodStats reads the figures of the pods sbs, each with those of its
// containers, in that order.
func (m *Manager) PodStats(ctx context.Context, sbs []store.Sandbox, rates *cgroupstats.Rates) []PodStats {
	return m.podStatsList(sbs, rates, false)
}

// PodMetrics reads pods' figures as PodStats does, with the detail the
// cAdvisor metrics need (Detail of the pod and of its running
// containers), and records no CPU sample: a scrape must not move the
// sample the stats RPCs compute usage_nano_cores from.
func (m *Manager) PodMetrics(ctx context.Context, sbs []store.Sandbox) []PodStats {
	return m.podStatsList(sbs, nil, true)
}

// podStatsList reads the container records once for all the pods.
func (m *Manager) podStatsList(sbs []store.Sandbox, rates *cgroupstats.Rates, detailed bool) []PodStats {
	byPod := map[string][]store.Container{}
	for _, sb := range sbs {
		byPod[sb.ID] = nil
	}
	m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Containers, func(_ string, c store.Container) error {
			if cs, ok := byPod[c.SandboxID]; ok {
				byPod[c.SandboxID] = append(cs, c)
			}
			return nil
		})
	})
	out := make([]PodStats, len(sbs))
	for i, sb := range sbs {
		out[i] = m.podStats(sb, byPod[sb.ID], rates, detailed)
	}
	return out
}

func (m *Manager) podStats(sb store.Sandbox, cs []store.Container, rates *cgroupstats.Rates, detailed bool) PodStats {
	now := time.Now()
	ps := PodStats{Sandbox: sb, CPU: CPUStats{Time: now}, Memory: MemoryStats{Time: now}, ProcessesTime: now}
	ps.Containers = m.listContainerStats(cs, map[string]string{sb.ID: sb.CgroupParent}, rates, detailed)
	if !sb.Ready() {
		return ps
	}
	if sample, ok := m.podSample(sb, cs, detailed); ok {
		ps.CPU, ps.Memory = m.cpuMemory("pod/"+sb.ID, sample, rates)
		ps.Detail = sample.Detail
		ps.ProcessesTime, ps.Processes, ps.ProcessesValid = sample.Time, sample.Pids, true
	}
	if !sb.HostNetwork && sb.NetNS != "" {
		n, err := PodNetwork(sb.NetNS)
		if err != nil {
			m.log.Warn("reading pod network stats", "sandbox", sb.ID[:min(12, len(sb.ID))], "error", err)
		} else {
			ps.Network = n
		}
	}
	return ps
}

// podSample reads the pod's cgroup. With a cgroup parent (the kubelet
// always gives one, per pod) that is the parent, which holds the infra
// process and every container; without one the pod has no cgroup of its
// own, so the infra process's and the running containers' are added up
// (removed containers then drop out of the cumulative CPU time, which
// Rate notices as a counter going backwards).
func (m *Manager) podSample(sb store.Sandbox, cs []store.Container, detailed bool) (cgroupstats.Sample, bool) {
	if sb.CgroupParent != "" {
		s, err := readCgroup(cgroupstats.ParentGroup(m.systemd, sb.CgroupParent), detailed)
		if err != nil {
			if !errors.Is(err, cgroupstats.ErrNoCgroup) {
				m.log.Warn("reading pod stats", "sandbox", sb.ID[:min(12, len(sb.ID))], "error", err)
			}
			return s, false
		}
		return s, true
	}
	groups := []string{cgroupstats.Group(m.systemd, CgroupsPath(m.systemd, "", sb.ID))}
	for _, c := range cs {
		if st := StateOf(c); st == Running || st == Created {
			groups = append(groups, cgroupstats.Group(m.systemd, CgroupsPath(m.systemd, "", c.ID)))
		}
	}
	var sum cgroupstats.Sample
	found := false
	for _, g := range groups {
		s, err := cgroupstats.Read(g)
		if err != nil {
			if !errors.Is(err, cgroupstats.ErrNoCgroup) {
				m.log.Warn("reading pod stats", "sandbox", sb.ID[:min(12, len(sb.ID))], "cgroup", g, "error", err)
			}
			continue
		}
		found = true
		sum = addSamples(sum, s)
	}
	return sum, found
}

// addSamples adds b to a. The sum has no limit (the pod has none of its
// own), no Detail, and the later of the two times.
func addSamples(a, b cgroupstats.Sample) cgroupstats.Sample {
	if b.Time.After(a.Time) {
		a.Time = b.Time
	}
	a.CPUNanos += b.CPUNanos
	a.Pids += b.Pids
	a.Memory.Usage += b.Memory.Usage
	a.Memory.WorkingSet += b.Memory.WorkingSet
	a.Memory.RSS += b.Memory.RSS
	a.Memory.PageFaults += b.Memory.PageFaults
	a.Memory.MajorPageFaults += b.Memory.MajorPageFaults
	a.Memory.Limit = 0
	a.Detail = nil
	return a
}

// PodNetwork reads the interface counters of the network namespace pinned
// at nsPath. It reads /proc/self/task/<tid>/net/dev from a thread inside
// the namespace: procfs shows the reading task's namespace, where sysfs
// would show the one it was mounted in.
func PodNetwork(nsPath string) (*NetworkStats, error) {
	var n *NetworkStats
	err := netns.Do(nsPath, func() error {
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/net/dev", unix.Gettid()))
		if err != nil {
			return err
		}
		defer f.Close()
		ifs, err := ParseNetDev(f)
		if err != nil {
			return err
		}
		n = &NetworkStats{Time: time.Now(), Interfaces: ifs}
		return nil
	})
	return n, err
}

// ParseNetDev reads /proc/net/dev: two header lines, then
// "name: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed
// rx_multicast tx_bytes tx_packets tx_errs tx_drop ...". Loopback is left
// out.
func ParseNetDev(r io.Reader) ([]InterfaceStats, error) {
	var out []InterfaceStats
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("/proc/net/dev line %q: no colon", sc.Text())
		}
		name = strings.TrimSpace(name)
		if name == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			return nil, fmt.Errorf("/proc/net/dev line %q: %d fields", sc.Text(), len(f))
		}
		var v [8]uint64
		for i, col := range []int{0, 2, 8, 10, 1, 3, 9, 11} {
			n, err := strconv.ParseUint(f[col], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/dev line %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		out = append(out, InterfaceStats{
			Name: name, RxBytes: v[0], RxErrors: v[1], TxBytes: v[2], TxErrors: v[3],
			RxPackets: v[4], RxDropped: v[5], TxPackets: v[6], TxDropped: v[7],
		})
	}
	return out, sc.Err()
}
