package imageservice

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	v1tarball "github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/imageservice/unpack"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Save writes the images that names name as one docker-archive (docker
// save): manifest.json, repositories, each config and each layer as an
// uncompressed tar, the format docker load reads. A name with a tag saves
// that tag; a repository without a tag ("busybox") saves all its tags; an
// ID saves the image without names. Every name is resolved before a byte
// is written, so an unknown one (errdefs.ErrNotFound) leaves w untouched.
func (s *Service) Save(ctx context.Context, w io.Writer, names []string) error {
	refs := map[name.Reference]v1.Image{}
	byID := map[digest.Digest]v1.Image{}
	image := func(img store.Image) (v1.Image, error) {
		if v, ok := byID[img.ID]; ok {
			return v, nil
		}
		v, err := s.Image(ctx, img)
		byID[img.ID] = v
		return v, err
	}
	all, err := s.List(ctx, "")
	if err != nil {
		return err
	}
	for _, n := range names {
		img, err := s.Get(ctx, n)
		if err != nil {
			return err
		}
		v, err := image(img)
		if err != nil {
			return err
		}
		if isIDPrefixOf(n, img.ID) {
			d, err := name.NewDigest("sha256-id@" + img.ID.String())
			if err != nil {
				return err
			}
			refs[d] = v
			continue
		}
		ref, err := reference.Parse(n)
		if err != nil {
			return err
		}
		tags := []string{ref.Familiar()}
		if ref.Digest() != "" {
			tags = nil
			for _, t := range img.RepoTags {
				if repository(t) == ref.Repository() {
					tags = append(tags, familiar(t))
				}
			}
		} else if !hasTag(n) {
			// Every tag of the repository, as docker saves them.
			tags = nil
			for _, other := range all {
				for _, t := range other.RepoTags {
					if repository(t) == ref.Repository() {
						ov, err := image(other)
						if err != nil {
							return err
						}
						if err := addTag(refs, familiar(t), ov); err != nil {
							return err
						}
					}
				}
			}
		}
		for _, t := range tags {
			if err := addTag(refs, t, v); err != nil {
				return err
			}
		}
		if len(tags) == 0 && ref.Digest() != "" {
			d, _ := name.NewDigest("sha256-id@" + img.ID.String())
			refs[d] = v
		}
	}
	return tarball.MultiWrite(refs, w)
}

func addTag(refs map[name.Reference]v1.Image, tag string, v v1.Image) error {
	t, err := name.NewTag(tag, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("tag %q: %v: %w", tag, err, errdefs.ErrInvalidArgument)
	}
	refs[t] = v
	return nil
}

// hasTag reports whether a name as typed has a tag or a digest.
func hasTag(n string) bool {
	if strings.Contains(n, "@") {
		return true
	}
	last := n[strings.LastIndex(n, "/")+1:]
	return strings.Contains(last, ":")
}

// familiar is docker's short form of a stored name.
func familiar(n string) string {
	ref, err := reference.Parse(n)
	if err != nil {
		return n
	}
	return ref.Familiar()
}

// LoadResult is one image a Load recorded.
type LoadResult struct {
	ID digest.Digest
	// Names are its tags from the archive, in docker's short form; none
	// for an image saved by ID.
	Names []string
}

// Load reads a docker-archive (docker save's format, or one compressed
// with gzip, bzip2 is not accepted) and records its images. The archive
// is spooled to a file under the image root first, since its entries are
// read in any order. Layers go through the same unpacker as pulls, which
// refuses hostile entries (errdefs.ErrInvalidArgument); an image is
// recorded only when all its layers are, so a bad archive leaves at most
// the images before the bad one. report, if set, gets each image loaded.
func (s *Service) Load(ctx context.Context, r io.Reader, report func(LoadResult)) ([]LoadResult, error) {
	plain, _, err := unpack.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("reading the archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	defer plain.Close()
	dir := filepath.Join(s.root, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "load-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, plain); err != nil {
		return nil, fmt.Errorf("reading the archive: %w", err)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(f.Name()) }
	manifest, err := v1tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("reading the archive's manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(manifest) == 0 {
		return nil, fmt.Errorf("the archive holds no image: %w", errdefs.ErrInvalidArgument)
	}
	var out []LoadResult
	for i, desc := range manifest {
		var tag *name.Tag
		imgOpener := v1tarball.Opener(opener)
		if len(desc.RepoTags) > 0 {
			t, err := name.NewTag(desc.RepoTags[0], name.WeakValidation)
			if err != nil {
				return out, fmt.Errorf("image %d of the archive: tag %q: %v: %w", i, desc.RepoTags[0], err, errdefs.ErrInvalidArgument)
			}
			tag = &t
		} else if len(manifest) > 1 {
			// go-containerregistry picks an image by tag, or the only one:
			// show it an archive whose manifest lists just this image.
			imgOpener = onlyImage(opener, desc)
		}
		img, err := v1tarball.Image(imgOpener, tag)
		if err != nil {
			return out, fmt.Errorf("image %d of the archive: %v: %w", i, err, errdefs.ErrInvalidArgument)
		}
		res, err := s.loadImage(ctx, img, desc.RepoTags)
		if err != nil {
			return out, fmt.Errorf("image %d of the archive: %w", i, err)
		}
		if report != nil {
			report(res)
		}
		out = append(out, res)
	}
	return out, nil
}

// onlyImage opens the archive with manifest.json listing desc alone.
func onlyImage(open v1tarball.Opener, desc v1tarball.Descriptor) v1tarball.Opener {
	return func() (io.ReadCloser, error) {
		f, err := open()
		if err != nil {
			return nil, err
		}
		m, err := json.Marshal(v1tarball.Manifest{desc})
		if err != nil {
			f.Close()
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() {
			defer f.Close()
			tr, tw := tar.NewReader(f), tar.NewWriter(pw)
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					pw.CloseWithError(tw.Close())
					return
				}
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				var body io.Reader = tr
				if path.Clean(hdr.Name) == "manifest.json" {
					hdr.Size, body = int64(len(m)), bytes.NewReader(m)
				}
				if err := tw.WriteHeader(hdr); err != nil {
					pw.CloseWithError(err)
					return
				}
				if _, err := io.Copy(tw, body); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}()
		return pr, nil
	}
}

func (s *Service) loadImage(ctx context.Context, img v1.Image, tags []string) (LoadResult, error) {
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return LoadResult{}, fmt.Errorf("config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	cfg, err := v1.ParseConfigFile(bytesReader(rawConfig))
	if err != nil {
		return LoadResult{}, fmt.Errorf("config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var names []string
	res := LoadResult{ID: digest.FromBytes(rawConfig)}
	for _, t := range tags {
		ref, err := reference.Parse(t)
		if err != nil {
			return LoadResult{}, err
		}
		if ref.Digest() != "" {
			continue
		}
		names = append(names, ref.String())
		res.Names = append(res.Names, ref.Familiar())
	}
	layers, err := img.Layers()
	if err != nil {
		return LoadResult{}, fmt.Errorf("layers: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return LoadResult{}, fmt.Errorf("%d layers for %d diff IDs in the config: %w", len(layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	var descs []v1.Descriptor
	var parent digest.Digest
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return LoadResult{}, fmt.Errorf("layer %d: %v: %w", i, err, errdefs.ErrInvalidArgument)
		}
		nl, release, err := s.addLayer(ctx, parent, rc, digest.Digest(cfg.RootFS.DiffIDs[i].String()))
		rc.Close()
		if err != nil {
			return LoadResult{}, fmt.Errorf("layer %d: %w", i, err)
		}
		releases = append(releases, release)
		descs = append(descs, nl.descriptor())
		parent = nl.chainID
	}
	stored, err := s.recordLocal(rawConfig, descs, names)
	if err != nil {
		return LoadResult{}, err
	}
	if stored.ID != res.ID {
		return LoadResult{}, errors.New("recorded image has another ID than its config")
	}
	slices.Sort(res.Names)
	return res, nil
}
