package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// UpdateContainerResources applies new cgroup limits to a created or
// running container; its status then reports them.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.GetLinux() == nil {
		return nil, fmt.Errorf("no Linux resources to update: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.containers.UpdateResources(ctx, req.ContainerId, toResources(req.Linux)); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// UpdatePodSandboxResources records the pod-level resources the kubelet
// has already applied to the pod's cgroups, so the sandbox's record
// stays in step.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	var resources, overhead = toResourcesOrNil(req.Resources), toResourcesOrNil(req.Overhead)
	if err := s.sandboxes.UpdateResources(ctx, req.PodSandboxId, resources, overhead); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
