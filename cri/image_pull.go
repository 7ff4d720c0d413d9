package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
	berthlog "github.com/berth-runtime/berth/internal/log"
)

// PullImage pulls an image and answers its ID, the same string ListImages
// and ImageStatus report as the image's id.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, fmt.Errorf("image name is empty: %w", errdefs.ErrInvalidArgument)
	}
	opts := imageservice.PullOptions{Auth: toAuth(req.GetAuth())}
	log := berthlog.From(ctx)
	opts.Progress = func(p imageservice.Progress) {
		if p.Status != imageservice.StatusDownloading {
			log.Debug("pull", "image", name, "layer", p.Layer, "status", p.Status, "current", p.Current, "total", p.Total)
		}
	}
	img, err := s.images.Pull(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID.String()}, nil
}

func toAuth(a *runtimeapi.AuthConfig) *remote.Auth {
	if a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "") {
		return nil
	}
	return &remote.Auth{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	}
}
