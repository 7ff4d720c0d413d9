package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// StopContainer sends the stop signal (the request config's, else the
// image's STOPSIGNAL, else SIGTERM), then SIGKILL after the timeout.
// Stopping a stopped or unknown container succeeds, as the CRI requires
// (critest checks it; containerd 1.6 fails that check).
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if req.ContainerId == "" {
		return nil, fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	err := s.containers.Stop(ctx, req.ContainerId, time.Duration(req.Timeout)*time.Second, "")
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}
