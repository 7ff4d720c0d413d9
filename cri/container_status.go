package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

func containerState(c store.Container) runtimeapi.ContainerState {
	switch runtime.StateOf(c) {
	case runtime.Created:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case runtime.Running:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case runtime.Exited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// runtimeState is the reverse of containerState, for list filters.
func runtimeState(s runtimeapi.ContainerState) runtime.State {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return runtime.Created
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return runtime.Running
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return runtime.Exited
	}
	return runtime.Unknown
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// ContainerStatus describes a container; verbose adds its record (with
// the pids) as JSON.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.containers.Get(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.toContainerStatus(ctx, c)}
	if req.Verbose {
		info, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encoding the record of container %s: %w", c.ID, err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListContainers lists containers matching the filter (id prefix, state,
// sandbox id prefix, every label of the selector).
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	items, err := s.listContainers(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainersResponse{Containers: items}, nil
}

// StreamContainers sends the same list in batches.
func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	items, err := s.listContainers(stream.Context(), req.Filter)
	if err != nil {
		return err
	}
	return sendBatches(items, func(b []*runtimeapi.Container) error {
		return stream.Send(&runtimeapi.StreamContainersResponse{Containers: b})
	})
}

func (s *Server) listContainers(ctx context.Context, f *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	// Only the CRI's own: the kubelet kills what it did not create.
	filter := runtime.ContainerFilter{IDPrefix: f.GetId(), SandboxIDPrefix: f.GetPodSandboxId(), Labels: f.GetLabelSelector(), Origin: store.OriginCRI, Made: true}
	if f.GetState() != nil {
		st := runtimeState(f.State.State)
		filter.State = &st
	}
	cs, err := s.containers.Match(ctx, filter)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.Container{}
	for _, c := range cs {
		items = append(items, &runtimeapi.Container{
			Id:           c.ID,
			PodSandboxId: c.SandboxID,
			Metadata:     containerMetadata(c),
			Image:        &runtimeapi.ImageSpec{Image: c.Image},
			ImageRef:     c.ImageRef,
			ImageId:      c.ImageID.String(),
			State:        containerState(c),
			CreatedAt:    nanos(c.CreatedAt),
			Labels:       c.Labels,
			Annotations:  c.Annotations,
		})
	}
	return items, nil
}

func containerMetadata(c store.Container) *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt}
}

// toContainerStatus converts a container record.
func (s *Server) toContainerStatus(ctx context.Context, c store.Container) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    containerMetadata(c),
		State:       containerState(c),
		CreatedAt:   nanos(c.CreatedAt),
		StartedAt:   nanos(c.StartedAt),
		FinishedAt:  nanos(c.FinishedAt),
		ExitCode:    c.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: c.Image},
		ImageRef:    c.ImageRef,
		ImageId:     c.ImageID.String(),
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      c.Labels,
		Annotations: c.Annotations,
		Mounts:      s.statusMounts(ctx, c.Mounts),
		LogPath:     c.LogPath,
		// The effective one, the image's included (KEP 4960).
		StopSignal: criSignal(c.StopSignal),
	}
	if res := criResources(c.Resources, c.OOMScoreAdj); res != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	if c.Pid != 0 {
		st.User = &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: c.UID, Gid: c.GID, SupplementalGroups: c.Groups}}
	}
	return st
}

// statusMounts reports the container's mounts; an image volume also gets
// the image it resolved to (ImageSpec.image_ref, KEP 5365).
func (s *Server) statusMounts(ctx context.Context, mounts []store.Mount) []*runtimeapi.Mount {
	out := make([]*runtimeapi.Mount, len(mounts))
	for i, m := range mounts {
		out[i] = &runtimeapi.Mount{
			ContainerPath: m.Destination, HostPath: m.Source, Readonly: m.ReadOnly,
			RecursiveReadOnly: m.RecursiveReadOnly, ImageSubPath: m.ImageSubPath,
		}
		switch m.Propagation {
		case "rslave", "slave":
			out[i].Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		case "rshared", "shared":
			out[i].Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
		}
		if m.Image != "" {
			out[i].Image = &runtimeapi.ImageSpec{Image: m.Image}
			if img, err := s.images.Get(ctx, m.Image); err == nil {
				out[i].Image.ImageRef = img.ID.String()
			}
		}
	}
	return out
}

// criResources is the reverse of toResources: the limits in force in the
// CRI's terms, nil when none were asked for.
func criResources(r *specs.LinuxResources, oomScoreAdj *int) *runtimeapi.LinuxContainerResources {
	if r == nil && oomScoreAdj == nil {
		return nil
	}
	out := &runtimeapi.LinuxContainerResources{}
	if oomScoreAdj != nil {
		out.OomScoreAdj = int64(*oomScoreAdj)
	}
	if r == nil {
		return out
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil {
			out.CpuShares = int64(*cpu.Shares)
		}
		if cpu.Quota != nil {
			out.CpuQuota = *cpu.Quota
		}
		if cpu.Period != nil {
			out.CpuPeriod = int64(*cpu.Period)
		}
		out.CpusetCpus, out.CpusetMems = cpu.Cpus, cpu.Mems
	}
	if mem := r.Memory; mem != nil {
		if mem.Limit != nil {
			out.MemoryLimitInBytes = *mem.Limit
		}
		if mem.Swap != nil {
			out.MemorySwapLimitInBytes = *mem.Swap
		}
	}
	for _, h := range r.HugepageLimits {
		out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.Pagesize, Limit: h.Limit})
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
	return out
}

// criSignal is the CRI's name for a signal the runtime records: SIGTERM
// is SIGNAL_SIGTERM, SIGRTMIN+3 is SIGNAL_SIGRTMINPLUS3; unknown or none
// is RUNTIME_DEFAULT.
func criSignal(sig string) runtimeapi.Signal {
	name := runtime.SignalName(sig)
	name = strings.Replace(name, "SIGRTMIN+", "SIGRTMINPLUS", 1)
	name = strings.Replace(name, "SIGRTMAX-", "SIGRTMAXMINUS", 1)
	return runtimeapi.Signal(runtimeapi.Signal_value["SIGNAL_"+name])
}
