package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/netns"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/store"
)

// Pod stats live here, not in runtime: a pod's cgroup parent, its network
// namespace and its state are in the sandbox record, which only this
// package reads. The containers' own figures come from runtime, which is
// told their pods' cgroup parents (runtime.StatsRequest). Like runtime's,
// they are read when asked for; rates is the caller's previous CPU sample
// per container and per pod ("pod/<id>"), nil for none.

// PodStats are a pod's figures: its cgroup (the parent the kubelet gave,
// else the sum of the infra process's and the containers' cgroups), its
// network and its containers.
type PodStats struct {
	Sandbox store.Sandbox
	CPU     runtime.CPUStats
	Memory  runtime.MemoryStats
	// Processes is the number of tasks; ProcessesValid says it was read.
	ProcessesTime  time.Time
	Processes      uint64
	ProcessesValid bool
	// Network is nil for host-network pods and pods without a netns.
	Network    *NetworkStats
	Containers []runtime.ContainerStats
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

// ContainerStats reads the figures of the container id (or unique id
// prefix). It is asked of the sandbox manager because the container's
// cgroup sits under its pod's cgroup parent.
func (m *Manager) ContainerStats(ctx context.Context, id string, rates *cgroupstats.Rates) (runtime.ContainerStats, error) {
	c, err := m.containers.Get(ctx, id)
	if err != nil {
		return runtime.ContainerStats{}, err
	}
	// A container whose pod record is gone is read as one without a
	// cgroup parent.
	parents := map[string]string{}
	err = m.db.View(func(tx *store.Tx) error {
		sb, err := store.Get[store.Sandbox](tx, store.Sandboxes, c.SandboxID)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		parents[sb.ID] = sb.CgroupParent
		return err
	})
	if err != nil {
		return runtime.ContainerStats{}, err
	}
	return m.containers.Stats(ctx, runtime.StatsRequest{Containers: []store.Container{c}, CgroupParents: parents, Rates: rates})[0], nil
}

// ListContainerStats reads the figures of cs, in that order.
func (m *Manager) ListContainerStats(ctx context.Context, cs []store.Container, rates *cgroupstats.Rates) ([]runtime.ContainerStats, error) {
	sbs, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	parents := make(map[string]string, len(sbs))
	for _, sb := range sbs {
		parents[sb.ID] = sb.CgroupParent
	}
	return m.containers.Stats(ctx, runtime.StatsRequest{Containers: cs, CgroupParents: parents, Rates: rates}), nil
}

// PodStats reads the figures of the pods sbs, each with those of its
// containers, in that order.
func (m *Manager) PodStats(ctx context.Context, sbs []store.Sandbox, rates *cgroupstats.Rates) ([]PodStats, error) {
	return m.podStatsList(ctx, sbs, rates, false)
}

// PodMetrics reads pods' figures as PodStats does, with the detail the
// cAdvisor metrics need (Detail of the pod and of its running
// containers), and records no CPU sample: a scrape must not move the
// sample the stats RPCs compute usage_nano_cores from.
func (m *Manager) PodMetrics(ctx context.Context, sbs []store.Sandbox) ([]PodStats, error) {
	return m.podStatsList(ctx, sbs, nil, true)
}

// podStatsList reads the container records once for all the pods.
func (m *Manager) podStatsList(ctx context.Context, sbs []store.Sandbox, rates *cgroupstats.Rates, detailed bool) ([]PodStats, error) {
	byPod := map[string][]store.Container{}
	for _, sb := range sbs {
		byPod[sb.ID] = nil
	}
	all, err := m.containers.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if cs, ok := byPod[c.SandboxID]; ok {
			byPod[c.SandboxID] = append(cs, c)
		}
	}
	out := make([]PodStats, len(sbs))
	for i, sb := range sbs {
		out[i] = m.podStats(ctx, sb, byPod[sb.ID], rates, detailed)
	}
	return out, nil
}

func (m *Manager) podStats(ctx context.Context, sb store.Sandbox, cs []store.Container, rates *cgroupstats.Rates, detailed bool) PodStats {
	now := time.Now()
	ps := PodStats{Sandbox: sb, CPU: runtime.CPUStats{Time: now}, Memory: runtime.MemoryStats{Time: now}, ProcessesTime: now}
	ps.Containers = m.containers.Stats(ctx, runtime.StatsRequest{
		Containers: cs, CgroupParents: map[string]string{sb.ID: sb.CgroupParent}, Rates: rates, Detailed: detailed,
	})
	if !sb.Ready() {
		return ps
	}
	if sample, ok := m.podSample(sb, cs, detailed); ok {
		ps.CPU, ps.Memory = runtime.SampleStats("pod/"+sb.ID, sample, rates)
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
		group := cgroupstats.ParentGroup(m.systemd, sb.CgroupParent)
		read := cgroupstats.Read
		if detailed {
			read = cgroupstats.ReadDetailed
		}
		s, err := read(group)
		if err != nil {
			if !errors.Is(err, cgroupstats.ErrNoCgroup) {
				m.log.Warn("reading pod stats", "sandbox", sb.ID[:min(12, len(sb.ID))], "error", err)
			}
			return s, false
		}
		return s, true
	}
	groups := []string{cgroupstats.Group(m.systemd, runtime.CgroupsPath(m.systemd, "", sb.ID))}
	for _, c := range cs {
		if st := runtime.StateOf(c); st == runtime.Running || st == runtime.Created {
			groups = append(groups, cgroupstats.Group(m.systemd, runtime.CgroupsPath(m.systemd, "", c.ID)))
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
