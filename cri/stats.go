package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
)

// Stats are read from the cgroups, the writable layers and the pod
// network namespaces when asked for (runtime/stats.go, sandbox/stats.go); usage_nano_cores
// is the rate since the previous request for the same container or pod,
// absent on the first one, which the kubelet then computes itself.
// A container that is not running gets timestamps without figures, not an
// error, as the kubelet expects; an unknown id is NotFound.

// ContainerStats reports one container's resource usage.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if req.ContainerId == "" {
		return nil, fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	st, err := s.stats.ContainerStats(ctx, req.ContainerId, &s.cpuRates)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: toContainerStats(st)}, nil
}

// ListContainerStats reports the usage of the containers matching the
// filter (id prefix, sandbox id prefix, every label of the selector).
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	items, err := s.listContainerStats(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: items}, nil
}

// StreamContainerStats sends the same list in batches.
func (s *Server) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream runtimeapi.RuntimeService_StreamContainerStatsServer) error {
	items, err := s.listContainerStats(stream.Context(), req.Filter)
	if err != nil {
		return err
	}
	return sendBatches(items, func(b []*runtimeapi.ContainerStats) error {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: b})
	})
}

func (s *Server) listContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	cs, err := s.containers.Match(ctx, runtime.ContainerFilter{IDPrefix: f.GetId(), SandboxIDPrefix: f.GetPodSandboxId(), Labels: f.GetLabelSelector(), Origin: store.OriginCRI})
	if err != nil {
		return nil, err
	}
	sts, err := s.stats.ListContainerStats(ctx, cs, &s.cpuRates)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.ContainerStats{}
	for _, st := range sts {
		items = append(items, toContainerStats(st))
	}
	return items, nil
}

// PodSandboxStats reports a pod's usage: its cgroup, network, process
// count and its containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.PodSandboxId == "" {
		return nil, fmt.Errorf("no sandbox id: %w", errdefs.ErrInvalidArgument)
	}
	sb, err := s.sandboxes.Get(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	pss, err := s.stats.PodStats(ctx, []store.Sandbox{sb}, &s.cpuRates)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: toPodStats(pss[0])}, nil
}

// ListPodSandboxStats reports the usage of the pods matching the filter
// (id prefix, every label of the selector).
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	items, err := s.listPodStats(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: items}, nil
}

// StreamPodSandboxStats sends the same list in batches.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxStatsServer) error {
	items, err := s.listPodStats(stream.Context(), req.Filter)
	if err != nil {
		return err
	}
	return sendBatches(items, func(b []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b})
	})
}

func (s *Server) listPodStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	sbs, err := s.sandboxes.Match(ctx, sandbox.Filter{IDPrefix: f.GetId(), Labels: f.GetLabelSelector(), Origin: store.OriginCRI})
	if err != nil {
		return nil, err
	}
	pss, err := s.stats.PodStats(ctx, sbs, &s.cpuRates)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.PodSandboxStats{}
	for _, ps := range pss {
		items = append(items, toPodStats(ps))
	}
	return items, nil
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

func toCPU(c runtime.CPUStats) *runtimeapi.CpuUsage {
	out := &runtimeapi.CpuUsage{Timestamp: c.Time.UnixNano()}
	if c.Valid {
		out.UsageCoreNanoSeconds = u64(c.UsageNanos)
		if c.HasRate {
			out.UsageNanoCores = u64(c.NanoCores)
		}
	}
	return out
}

func toMemory(m runtime.MemoryStats) *runtimeapi.MemoryUsage {
	out := &runtimeapi.MemoryUsage{Timestamp: m.Time.UnixNano()}
	if m.Valid {
		out.WorkingSetBytes = u64(m.WorkingSet)
		out.UsageBytes = u64(m.Usage)
		out.RssBytes = u64(m.RSS)
		out.PageFaults = u64(m.PageFaults)
		out.MajorPageFaults = u64(m.MajorPageFaults)
		if avail, ok := m.Available(); ok {
			out.AvailableBytes = u64(avail)
		}
	}
	return out
}

func toContainerStats(st runtime.ContainerStats) *runtimeapi.ContainerStats {
	c := st.Container
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id:          c.ID,
			Metadata:    containerMetadata(c),
			Labels:      c.Labels,
			Annotations: c.Annotations,
		},
		Cpu:    toCPU(st.CPU),
		Memory: toMemory(st.Memory),
	}
	if l := st.WritableLayer; l != nil {
		out.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  l.Time.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: l.Mountpoint},
			UsedBytes:  u64(l.Bytes),
			InodesUsed: u64(l.Inodes),
		}
	}
	return out
}

func toInterface(i sandbox.InterfaceStats) *runtimeapi.NetworkInterfaceUsage {
	return &runtimeapi.NetworkInterfaceUsage{
		Name: i.Name, RxBytes: u64(i.RxBytes), RxErrors: u64(i.RxErrors), TxBytes: u64(i.TxBytes), TxErrors: u64(i.TxErrors),
	}
}

func toPodStats(ps sandbox.PodStats) *runtimeapi.PodSandboxStats {
	sb := ps.Sandbox
	linux := &runtimeapi.LinuxPodSandboxStats{
		Cpu:     toCPU(ps.CPU),
		Memory:  toMemory(ps.Memory),
		Process: &runtimeapi.ProcessUsage{Timestamp: ps.ProcessesTime.UnixNano()},
	}
	if ps.ProcessesValid {
		linux.Process.ProcessCount = u64(ps.Processes)
	}
	if n := ps.Network; n != nil {
		linux.Network = &runtimeapi.NetworkUsage{Timestamp: n.Time.UnixNano()}
		if d, ok := n.Default(); ok {
			linux.Network.DefaultInterface = toInterface(d)
		}
		for _, i := range n.Interfaces {
			linux.Network.Interfaces = append(linux.Network.Interfaces, toInterface(i))
		}
	}
	for _, c := range ps.Containers {
		linux.Containers = append(linux.Containers, toContainerStats(c))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id:          sb.ID,
			Metadata:    sandboxMetadata(sb),
			Labels:      sb.Labels,
			Annotations: sb.Annotations,
		},
		Linux: linux,
	}
}
