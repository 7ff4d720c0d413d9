package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if req.ContainerId == "" {
		return nil, fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.containers.Start(ctx, req.ContainerId); err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer sends the stop signal (the request config's, else the
// image's STOPSIGNAL, else SIGTERM), then SIGKILL after the timeout.
// Stopping a stopped or unknown container succeeds, as the CRI requires
// (critest checks it; containerd 1.6 fails that check).
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if req.ContainerId == "" {
		return nil, fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.containers.Get(ctx, req.ContainerId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.containers.Stop(ctx, c.ID, time.Duration(req.Timeout)*time.Second, ""); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, killing it if needed. An unknown
// id succeeds.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if req.ContainerId == "" {
		return nil, fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.containers.Remove(ctx, req.ContainerId); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func containerConfig(c store.Container) *runtimeapi.ContainerConfig {
	cfg := &runtimeapi.ContainerConfig{}
	proto.Unmarshal(c.Config, cfg)
	return cfg
}

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

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// ContainerStatus describes a container; verbose adds its record and pid.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.containers.Get(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	cfg := containerConfig(c)
	resp := &runtimeapi.ContainerStatusResponse{Status: s.toContainerStatus(c, cfg)}
	if req.Verbose {
		info, _ := json.Marshal(struct {
			store.Container
			Config *runtimeapi.ContainerConfig `json:"config"`
		}{c, cfg})
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
	cs, err := s.matchingContainers(ctx, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.Container{}
	for _, c := range cs {
		state := containerState(c)
		if f.GetState() != nil && f.State.State != state {
			continue
		}
		items = append(items, &runtimeapi.Container{
			Id:           c.ID,
			PodSandboxId: c.SandboxID,
			Metadata:     containerMetadata(c),
			Image:        &runtimeapi.ImageSpec{Image: c.Image},
			ImageRef:     c.ImageRef,
			ImageId:      c.ImageID.String(),
			State:        state,
			CreatedAt:    nanos(c.CreatedAt),
			Labels:       c.Labels,
			Annotations:  c.Annotations,
		})
	}
	return items, nil
}

// matchingContainers returns the containers whose id starts with id, whose
// sandbox id starts with sandboxID and whose labels include every label of
// selector (the filters' shared part).
func (s *Server) matchingContainers(ctx context.Context, id, sandboxID string, selector map[string]string) ([]store.Container, error) {
	cs, err := s.containers.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Container
	for _, c := range cs {
		if strings.HasPrefix(c.ID, id) && strings.HasPrefix(c.SandboxID, sandboxID) && labelsMatch(c.Labels, selector) {
			out = append(out, c)
		}
	}
	return out, nil
}

func containerMetadata(c store.Container) *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt}
}

// ExecSync runs a command in a running container and returns its output.
// A timeout kills the command and fails the call with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	res, err := s.containers.ExecSync(ctx, req.ContainerId, req.Cmd, time.Duration(req.Timeout)*time.Second)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: int32(res.ExitCode)}, nil
}

// toContainerStatus converts c, whose decoded config is cfg.
func (s *Server) toContainerStatus(c store.Container, cfg *runtimeapi.ContainerConfig) *runtimeapi.ContainerStatus {
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
		Mounts:      s.statusMounts(cfg.Mounts),
		LogPath:     c.LogPath,
		StopSignal:  cfg.StopSignal,
	}
	if res := cfg.GetLinux().GetResources(); res != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	if c.Pid != 0 {
		st.User = &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: c.UID, Gid: c.GID, SupplementalGroups: c.Groups}}
	}
	return st
}

// statusMounts reports the container's mounts; an image volume also gets
// the image it resolved to (ImageSpec.image_ref, KEP 5365).
func (s *Server) statusMounts(mounts []*runtimeapi.Mount) []*runtimeapi.Mount {
	out := make([]*runtimeapi.Mount, len(mounts))
	for i, m := range mounts {
		out[i] = m
		if name := m.GetImage().GetImage(); name != "" {
			if img, err := s.images.Get(context.Background(), name); err == nil {
				c := proto.Clone(m).(*runtimeapi.Mount)
				c.Image.ImageRef = img.ID.String()
				out[i] = c
			}
		}
	}
	return out
}
