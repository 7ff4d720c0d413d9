package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// RemovePodSandbox removes the pod's containers and every trace of the
// sandbox. An unknown id succeeds, as the CRI requires.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if req.PodSandboxId == "" {
		return nil, fmt.Errorf("no sandbox id: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.sandboxes.Remove(ctx, req.PodSandboxId); err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
