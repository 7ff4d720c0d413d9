package runtime

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/store"
)

// Stats are computed when asked for, never polled in the background: an
// idle berthd with a hundred containers does no work. The one piece of
// state is the caller's *cgroupstats.Rates, the previous CPU sample per
// container (and per pod, under "pod/<id>", which sandbox/stats.go reads),
// from which the CPU rate is derived; a nil Rates gives no rates.

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
	// Detail is the cgroup's figures for the cAdvisor metrics, read
	// when StatsRequest.Detailed asks (nil otherwise, and for a container
	// that is not running).
	Detail *cgroupstats.Detail
	// Raw is the cgroup's figures as the kernel writes them, read when
	// StatsRequest.Raw asks (nil otherwise, and for a container that is
	// not running).
	Raw *cgroupstats.Raw
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

// statsWorkers bounds the containers read at once by a list.
const statsWorkers = 8

// StatsRequest asks for the figures of some containers.
type StatsRequest struct {
	Containers []store.Container
	// CgroupParents are the cgroup parents of the containers' pods, by
	// sandbox id: a container's cgroup sits under its pod's parent, and
	// the pod's record is the sandbox manager's, not runtime's.
	CgroupParents map[string]string
	// Rates keeps the previous CPU sample per container; nil gives no
	// rates.
	Rates *cgroupstats.Rates
	// Detailed reads the cgroups' Detail as well, for the cAdvisor
	// metrics.
	Detailed bool
	// Raw reads the cgroups' Raw figures as well, for the Docker Engine
	// API's stats.
	Raw bool
}

// Stats reads the figures of req.Containers, in that order, at most
// statsWorkers at a time.
func (m *Manager) Stats(ctx context.Context, req StatsRequest) []ContainerStats {
	out := make([]ContainerStats, len(req.Containers))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsWorkers)
	for i, c := range req.Containers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = m.containerStats(c, req.CgroupParents[c.SandboxID], req.Rates, req.Detailed)
			if req.Raw && out[i].CPU.Valid {
				group := cgroupstats.Group(m.systemd, CgroupsPath(m.systemd, req.CgroupParents[c.SandboxID], c.ID))
				out[i].Raw, _ = cgroupstats.ReadRaw(group)
			}
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
			st.CPU, st.Memory = SampleStats(c.ID, sample, rates)
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

// SampleStats turns a cgroup sample into CPU and memory figures, with the
// CPU rate since the previous sample under key when rates is not nil.
func SampleStats(key string, s cgroupstats.Sample, rates *cgroupstats.Rates) (CPUStats, MemoryStats) {
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
