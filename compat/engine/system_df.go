package engine

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// legacyDiskUsage is /system/df as API versions before 1.52 send it
// (the docker CLI 28 among them): flat lists instead of per-type usage.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// diskUsage is what /system/df measures, in both shapes' terms.
type diskUsage struct {
	layersSize int64
	images     []image.Summary
	containers []container.Summary
	volumes    []volume.Volume
}

// systemDF is GET /system/df: images with their shared and unique sizes
// and container counts, containers with their writable layers, volumes
// with their usage, and an empty build cache (berth's builder keeps
// none apart from images). `type` limits what is measured.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) error {
	want := map[system.DiskUsageObject]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch o := system.DiskUsageObject(t); o {
		case system.ContainerObject, system.ImageObject, system.VolumeObject, system.BuildCacheObject:
			want[o] = true
		default:
			return errorf(errdefs.ErrInvalidArgument, "unknown object type: %s", t)
		}
	}
	all := len(want) == 0
	du, err := s.diskUsage(r.Context(), all || want[system.ImageObject], all || want[system.ContainerObject], all || want[system.VolumeObject])
	if err != nil {
		return err
	}
	if versionBefore(r, "1.52") {
		out := legacyDiskUsage{LayersSize: du.layersSize, Images: du.images, Containers: du.containers, Volumes: du.volumes, BuildCache: []build.CacheRecord{}}
		return writeJSON(w, http.StatusOK, out)
	}
	verbose := boolValue(r, "verbose")
	var out system.DiskUsage
	if all || want[system.ImageObject] {
		out.ImageUsage = imageUsage(du, verbose)
	}
	if all || want[system.ContainerObject] {
		out.ContainerUsage = containerUsage(du.containers, verbose)
	}
	if all || want[system.VolumeObject] {
		out.VolumeUsage = volumeUsage(du.volumes, verbose)
	}
	if all || want[system.BuildCacheObject] {
		out.BuildCacheUsage = &build.DiskUsage{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func imageUsage(du diskUsage, verbose bool) *image.DiskUsage {
	u := &image.DiskUsage{TotalCount: int64(len(du.images)), TotalSize: du.layersSize}
	for _, img := range du.images {
		if img.Containers > 0 {
			u.ActiveCount++
		} else {
			u.Reclaimable += img.Size - img.SharedSize
		}
	}
	if verbose {
		u.Items = du.images
	}
	return u
}

func containerUsage(cs []container.Summary, verbose bool) *container.DiskUsage {
	u := &container.DiskUsage{TotalCount: int64(len(cs))}
	var used int64
	for _, c := range cs {
		u.TotalSize += c.SizeRw
		if c.State == container.StateRunning || c.State == container.StatePaused || c.State == container.StateRestarting {
			u.ActiveCount++
			used += c.SizeRw
		}
	}
	u.Reclaimable = u.TotalSize - used
	if verbose {
		u.Items = cs
	}
	return u
}

func volumeUsage(vs []volume.Volume, verbose bool) *volume.DiskUsage {
	u := &volume.DiskUsage{TotalCount: int64(len(vs))}
	var used int64
	for _, v := range vs {
		if v.UsageData == nil {
			continue
		}
		if v.UsageData.RefCount > 0 {
			u.ActiveCount++
			used += v.UsageData.Size
		}
		if v.UsageData.Size > 0 {
			u.TotalSize += v.UsageData.Size
		}
	}
	u.Reclaimable = u.TotalSize - used
	if verbose {
		u.Items = vs
	}
	return u
}

// diskUsage measures what was asked for. Containers are listed whenever
// images are, as the images' container counts need them.
func (s *Server) diskUsage(ctx context.Context, images, containers, volumes bool) (diskUsage, error) {
	du := diskUsage{images: []image.Summary{}, containers: []container.Summary{}, volumes: []volume.Volume{}}
	var cs []store.Container
	if (images || containers) && s.containers != nil {
		var err error
		if cs, err = s.containers.List(ctx); err != nil {
			return du, err
		}
	}
	var imgs []store.Image
	if s.images != nil && (images || containers) {
		var err error
		if imgs, err = s.images.List(ctx, ""); err != nil {
			return du, err
		}
	}
	if images && s.images != nil {
		sizes, err := s.images.SnapshotSizes(ctx)
		if err != nil {
			return du, err
		}
		du.images, du.layersSize = s.imagesUsage(imgs, cs, sizes)
	}
	if containers {
		imageSize := map[digest.Digest]int64{}
		for _, img := range imgs {
			imageSize[img.ID] = img.Size
		}
		for _, c := range cs {
			du.containers = append(du.containers, s.containerUsageItem(ctx, c, imageSize[c.ImageID]))
		}
	}
	if volumes {
		vs, err := s.volumesUsage(ctx)
		if err != nil {
			return du, err
		}
		du.volumes = vs
	}
	return du, nil
}

// imagesUsage gives each image its size (all its layers), shared size
// (its layers other images use too) and containers, and the layers'
// total, each layer counted once.
func (s *Server) imagesUsage(imgs []store.Image, cs []store.Container, sizes map[digest.Digest]int64) ([]image.Summary, int64) {
	users := map[digest.Digest]int{}
	for _, img := range imgs {
		for _, l := range uniqueLayers(img) {
			users[l]++
		}
	}
	var total int64
	for l := range users {
		total += sizes[l]
	}
	containers := map[digest.Digest]int64{}
	for _, c := range cs {
		containers[c.ImageID]++
	}
	out := []image.Summary{}
	for _, img := range imgs {
		sum := image.Summary{
			ID: img.ID.String(), Containers: containers[img.ID], Created: img.Created.Unix(),
			Labels: img.Labels, RepoTags: familiarNames(img.RepoTags), RepoDigests: familiarNames(img.RepoDigests),
		}
		for _, l := range uniqueLayers(img) {
			sum.Size += sizes[l]
			if users[l] > 1 {
				sum.SharedSize += sizes[l]
			}
		}
		if s.images != nil {
			if cfg, err := s.images.Config(img); err == nil && !cfg.Created.IsZero() {
				sum.Created = cfg.Created.Unix()
			}
		}
		out = append(out, sum)
	}
	return out, total
}

func uniqueLayers(img store.Image) []digest.Digest {
	ls := slices.Clone(img.ChainIDs)
	slices.Sort(ls)
	return slices.Compact(ls)
}

// familiarNames are names as docker shows them (busybox:latest).
func familiarNames(names []string) []string {
	out := []string{}
	for _, n := range names {
		if ref, err := reference.Parse(n); err == nil {
			n = ref.Familiar()
		}
		out = append(out, n)
	}
	return out
}

// containerUsageItem is a container as `docker system df -v` lists it:
// as `docker ps` shows it, with its writable layer (SizeRw) and that
// plus its image (SizeRootFs).
func (s *Server) containerUsageItem(ctx context.Context, c store.Container, imageSize int64) container.Summary {
	var sb store.Sandbox
	if s.pods != nil {
		sb, _ = s.pods.Get(ctx, c.SandboxID)
	}
	sum := s.summary(ctx, c, sb, s.dockerName(ctx, c), time.Now())
	if rw, _, err := s.containers.LayerUsage(ctx, c.ID); err == nil {
		sum.SizeRw = rw
	}
	sum.SizeRootFs = sum.SizeRw + imageSize
	return sum
}

// volumesUsage lists the volumes with their size and the number of
// containers that mount them.
func (s *Server) volumesUsage(ctx context.Context) ([]volume.Volume, error) {
	out := []volume.Volume{}
	if s.volumes == nil {
		return out, nil
	}
	vs, err := s.volumes.List(ctx)
	if err != nil {
		return nil, err
	}
	users, err := s.volumes.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		view := s.volumeView(v)
		size, err := s.volumes.Size(v)
		if err != nil {
			size = -1
		}
		view.UsageData = &volume.UsageData{Size: size, RefCount: int64(len(users[v.Name]))}
		out = append(out, view)
	}
	return out, nil
}
