package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// RemoveImage removes an image with all its names; removing a missing
// image succeeds, as the CRI requires.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, fmt.Errorf("image name is empty: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.images.Remove(ctx, name); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}
