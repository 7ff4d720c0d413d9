package cri

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// UpdateContainerResources applies new cgroup limits to a created or
// running container; its status then reports them.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.GetLinux() == nil {
		return nil, fmt.Errorf("no Linux resources to update: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.containers.Get(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	cfg := containerConfig(c)
	if cfg.Linux == nil {
		cfg.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	cfg.Linux.Resources = req.Linux
	raw, err := proto.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.containers.UpdateResources(ctx, c.ID, toResources(req.Linux), raw); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// UpdatePodSandboxResources records the pod-level resources the kubelet
// has already applied to the pod's cgroups, so the sandbox's config (and
// its status) stay in step.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	sb, err := s.sandboxes.Get(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	cfg := sandboxConfig(sb)
	if cfg.Linux == nil {
		cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{}
	}
	if req.Resources != nil {
		cfg.Linux.Resources = req.Resources
	}
	if req.Overhead != nil {
		cfg.Linux.Overhead = req.Overhead
	}
	raw, err := proto.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.sandboxes.UpdateConfig(ctx, sb.ID, raw); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
