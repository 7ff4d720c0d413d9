package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
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
