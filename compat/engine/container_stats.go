package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
)

// statsInterval is how often a stats stream sends, as dockerd's collector.
const statsInterval = time.Second

func (s *Server) statsRoutes() {
	s.route("GET", "/containers/{name}/stats", s.containerStats)
}

// containerStats is docker stats: with stream (the default) a sample
// every second, each with the previous one's CPU figures (precpu) from
// which clients compute the CPU percentage; without, one sample taken a
// second after a first one (so that it has precpu too), unless one-shot
// asks for a single sample at once.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	c, err := s.lookupContainer(r.Context(), name)
	if err != nil {
		return err
	}
	stream := true
	if r.URL.Query().Has("stream") {
		stream = boolValue(r, "stream")
	}
	oneShot := boolValue(r, "one-shot")
	if oneShot && stream {
		return errorf(errdefs.ErrInvalidArgument, "cannot have stream=true and one-shot=true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := newFlushWriter(w)
	enc := json.NewEncoder(out)

	var prev *container.StatsResponse
	if !stream && !oneShot {
		if runtime.StateOf(c) == runtime.Running {
			first := s.statsSample(r.Context(), c, nil)
			prev = &first
			select {
			case <-r.Context().Done():
				return nil
			case <-time.After(statsInterval):
			}
		}
	}
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		if cur, err := s.containers.Get(r.Context(), c.ID); err == nil {
			c = cur
		} else if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		st := s.statsSample(r.Context(), c, prev)
		if err := enc.Encode(st); err != nil || !stream {
			return nil
		}
		prev = &st
		select {
		case <-r.Context().Done():
			return nil
		case <-t.C:
		}
	}
}

// statsSample reads the container's figures now, with prev's as the
// pre-read ones. A container that is not running has only its name and id.
func (s *Server) statsSample(ctx context.Context, c store.Container, prev *container.StatsResponse) container.StatsResponse {
	st := container.StatsResponse{ID: c.ID, Name: "/" + s.dockerName(ctx, c), OSType: "linux"}
	if prev != nil {
		st.PreRead, st.PreCPUStats = prev.Read, prev.CPUStats
	}
	if runtime.StateOf(c) != runtime.Running {
		return st
	}
	sb, err := s.pods.Get(ctx, c.SandboxID)
	if err != nil {
		return st
	}
	res := s.containers.Stats(ctx, runtime.StatsRequest{
		Containers: []store.Container{c}, CgroupParents: map[string]string{sb.ID: sb.CgroupParent},
		Detailed: true, Raw: true,
	})[0]
	if !res.CPU.Valid {
		return st
	}
	st.Read = res.CPU.Time
	st.CPUStats = container.CPUStats{
		CPUUsage:   container.CPUUsage{TotalUsage: res.CPU.UsageNanos},
		OnlineCPUs: uint32(goruntime.NumCPU()),
	}
	st.CPUStats.SystemUsage, _ = cgroupstats.SystemCPUNanos()
	mem := container.MemoryStats{Usage: res.Memory.Usage, Limit: res.Memory.Limit}
	if total := machineMemory(); mem.Limit == 0 || mem.Limit > total && total > 0 {
		mem.Limit = total
	}
	if d := res.Detail; d != nil {
		if d.CPU.HasUsage {
			st.CPUStats.CPUUsage.UsageInUsermode = d.CPU.UserNanos
			st.CPUStats.CPUUsage.UsageInKernelmode = d.CPU.SystemNanos
		}
		if d.CPU.HasThrottling {
			st.CPUStats.ThrottlingData = container.ThrottlingData{
				Periods: d.CPU.Periods, ThrottledPeriods: d.CPU.ThrottledPeriods, ThrottledTime: d.CPU.ThrottledNanos,
			}
		}
		if d.Memory.Has {
			mem.MaxUsage, mem.Failcnt = d.Memory.MaxUsage, d.Memory.Failcnt
		}
		if d.Tasks.HasPids {
			st.PidsStats = container.PidsStats{Current: d.Tasks.Threads, Limit: d.Tasks.ThreadsMax}
		}
		st.BlkioStats = blkioStats(d.IO)
	}
	if raw := res.Raw; raw != nil {
		mem.Stats = raw.MemoryStat
		st.CPUStats.CPUUsage.PercpuUsage = raw.PerCPU
	}
	st.MemoryStats = mem
	if !sb.HostNetwork && sb.NetNS != "" {
		if n, err := sandbox.PodNetwork(sb.NetNS); err == nil {
			st.Networks = map[string]container.NetworkStats{}
			for _, i := range n.Interfaces {
				st.Networks[i.Name] = container.NetworkStats{
					RxBytes: i.RxBytes, RxPackets: i.RxPackets, RxErrors: i.RxErrors, RxDropped: i.RxDropped,
					TxBytes: i.TxBytes, TxPackets: i.TxPackets, TxErrors: i.TxErrors, TxDropped: i.TxDropped,
				}
			}
		}
	}
	return st
}

// blkioStats are the block I/O per device and operation, as docker's
// io_service_bytes_recursive and io_serviced_recursive (the CLI adds the
// "read" and "write" rows up).
func blkioStats(devs []cgroupstats.IODevice) container.BlkioStats {
	var b container.BlkioStats
	for _, d := range devs {
		for op, v := range d.Bytes {
			b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, container.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: blkioOp(op), Value: v})
		}
		for op, v := range d.Ops {
			b.IoServicedRecursive = append(b.IoServicedRecursive, container.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: blkioOp(op), Value: v})
		}
	}
	return b
}

// blkioOp names an operation as docker does: v1's as the kernel writes
// them ("Read"), v2's in lower case ("read").
func blkioOp(op string) string {
	if cgroupstats.Unified() {
		return strings.ToLower(op)
	}
	return op
}

// machineMemory is the host's memory, docker's limit for a container
// without one.
func machineMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
