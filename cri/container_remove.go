package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// RemoveContainer removes a container, killing it if needed. An unknown
// id succeeds, as the CRI requires.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if req.ContainerId == "" {
		return nil, fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.containers.Remove(ctx, req.ContainerId); err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}
