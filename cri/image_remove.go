package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/snapshot"
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

// ImageFsInfo reports the image file system (unpacked layers and blobs)
// and, separately, the containers' writable layers.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	now := time.Now().UnixNano()
	img, err := s.images.Usage(ctx)
	if err != nil {
		return nil, err
	}
	ctr := imageservice.FsUsage{Mountpoint: s.containersDir()}
	if ctr.Bytes, ctr.Inodes, err = snapshot.Usage(ctr.Mountpoint); err != nil {
		return nil, err
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{fsUsage(img, now)},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{fsUsage(ctr, now)},
	}, nil
}

func fsUsage(u imageservice.FsUsage, now int64) *runtimeapi.FilesystemUsage {
	return &runtimeapi.FilesystemUsage{
		Timestamp:  now,
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
		UsedBytes:  u64(uint64(u.Bytes)),
		InodesUsed: u64(uint64(u.Inodes)),
	}
}
