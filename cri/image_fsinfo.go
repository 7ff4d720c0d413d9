package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/imageservice"
)

// ImageFsInfo reports the image file system (unpacked layers and blobs)
// and, separately, the containers' writable layers.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	now := time.Now().UnixNano()
	img, err := s.images.Usage(ctx)
	if err != nil {
		return nil, err
	}
	layers, err := s.files.WritableLayersUsage()
	if err != nil {
		return nil, err
	}
	ctr := imageservice.FsUsage{Mountpoint: layers.Mountpoint, Bytes: layers.Bytes, Inodes: layers.Inodes}
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
