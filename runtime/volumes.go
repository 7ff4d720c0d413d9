package runtime

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/store"
)

// mountImages mounts each image read-only under the container's bundle
// (volumes/<n>, and volumes/<n>-sub for a sub path), seen through the
// pod's ID mapping when it has a user namespace, and returns the
// mounts for the spec. The images' layers become GC roots of the
// container before anything is mounted.
func (m *Manager) mountImages(ctx context.Context, c store.Container, ims []ImageMount, idmap *rootfs.IDMap) ([]oci.Mount, error) {
	type prepared struct {
		lowers []string
		im     ImageMount
	}
	var todo []prepared
	var chains []digest.Digest
	for _, im := range ims {
		for _, part := range strings.Split(im.SubPath, "/") {
			if part == ".." {
				return nil, fmt.Errorf("image sub path %q leaves the image: %w", im.SubPath, errdefs.ErrInvalidArgument)
			}
		}
		if im.Destination == "" || !path.IsAbs(im.Destination) {
			return nil, fmt.Errorf("image volume destination %q must be absolute: %w", im.Destination, errdefs.ErrInvalidArgument)
		}
		img, err := m.images.Get(ctx, im.Image)
		if err != nil {
			return nil, fmt.Errorf("image volume %q: %w", im.Image, err)
		}
		lowers, err := m.images.SnapshotDirs(ctx, img)
		if err != nil {
			return nil, err
		}
		chains = append(chains, img.ChainIDs[len(img.ChainIDs)-1])
		todo = append(todo, prepared{lowers, im})
	}
	if _, err := m.update(c.ID, func(c *store.Container) { c.VolumeChainIDs = chains }); err != nil {
		return nil, err
	}
	var mounts []oci.Mount
	for i, p := range todo {
		target := filepath.Join(c.Bundle, "volumes", strconv.Itoa(i))
		if err := m.mounts.MountReadOnly(target, p.lowers, idmap); err != nil {
			return nil, err
		}
		src := target
		if sub := strings.Trim(p.im.SubPath, "/"); sub != "" {
			src = target + "-sub"
			if err := m.mounts.BindBeneath(target, sub, src, true); err != nil {
				return nil, fmt.Errorf("image volume %q: %w", p.im.Image, err)
			}
		}
		mounts = append(mounts, oci.Mount{Source: src, Destination: p.im.Destination, ReadOnly: true})
	}
	return mounts, nil
}
