package cri

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/store"
)

// streamBatch is how many items the Stream* RPCs send per message.
const streamBatch = 100

// ListImages lists images, or only the one the filter names.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.listImages(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListImagesResponse{Images: imgs}, nil
}

// StreamImages sends the same list as ListImages in batches, each image
// once, then ends the stream.
func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream runtimeapi.ImageService_StreamImagesServer) error {
	imgs, err := s.listImages(stream.Context(), req.GetFilter())
	if err != nil {
		return err
	}
	return sendBatches(imgs, func(b []*runtimeapi.Image) error {
		return stream.Send(&runtimeapi.StreamImagesResponse{Images: b})
	})
}

func (s *Server) listImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	imgs, err := s.images.List(ctx, filter.GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, toImage(img))
	}
	return out, nil
}

// ImageStatus describes one image; an unknown image is an empty answer,
// not an error. Verbose adds the config and layers as JSON.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	imgs, err := s.images.List(ctx, req.GetImage().GetImage())
	if err != nil || len(imgs) == 0 {
		return &runtimeapi.ImageStatusResponse{}, err
	}
	img := imgs[0]
	resp := &runtimeapi.ImageStatusResponse{Image: toImage(img)}
	if req.GetVerbose() {
		cfg, err := s.images.Config(img)
		if err != nil {
			return nil, err
		}
		dirs, err := s.images.SnapshotDirs(ctx, img)
		if err != nil {
			return nil, err
		}
		info, err := json.Marshal(struct {
			ImageSpec      *v1.ConfigFile `json:"imageSpec"`
			ChainIDs       []string       `json:"chainIDs"`
			SnapshotDirs   []string       `json:"snapshotDirs"`
			ManifestDigest string         `json:"manifestDigest"`
			IndexDigest    string         `json:"indexDigest,omitempty"`
			MediaType      string         `json:"mediaType"`
			Created        string         `json:"pulled"`
		}{cfg, digestStrings(img), dirs, img.ManifestDigest.String(), img.IndexDigest.String(), img.ManifestMediaType, img.Created.Format("2006-01-02T15:04:05Z07:00")})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func digestStrings(img store.Image) []string {
	out := make([]string, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		out[i] = c.String()
	}
	return out
}

func toImage(img store.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID.String(),
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        uint64(max(img.Size, 1)),
		Spec:        &runtimeapi.ImageSpec{Image: img.ID.String()},
		Pinned:      img.Pinned,
	}
	uid, name := imageUser(img.User)
	if uid != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *uid}
	}
	out.Username = name
	out.Spec.Annotations = img.Labels
	return out
}

// imageUser splits an image's USER ("name", "1000", "name:group") into
// the uid or the user name the CRI reports; the group is not reported.
func imageUser(user string) (*int64, string) {
	user, _, _ = strings.Cut(user, ":")
	if user == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, user
}
