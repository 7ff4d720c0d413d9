package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// StopPodSandbox kills the pod's containers and its infra process and
// detaches its network (the sandbox service does it in that order). An
// unknown id succeeds, as the CRI requires.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if req.PodSandboxId == "" {
		return nil, fmt.Errorf("no sandbox id: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.sandboxes.Stop(ctx, req.PodSandboxId); err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}
