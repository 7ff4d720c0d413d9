package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/store"
)

// A container's writable layer is the overlay upper directory
// (<root>/containers/<id>/upper). overlayfs records in it what the
// container did to its image: files and directories it added or changed
// (copied up), a character device 0/0 for every name it removed, and the
// xattr trusted.overlay.opaque=y on a directory it removed and made again
// (the lower layers' entries are hidden below it). Changes and DiffTar read
// it as docker's overlay2 driver does.

// ChangeKind is how a path differs from the image, numbered as docker's
// container.ChangeType (0 modified, 1 added, 2 deleted).
type ChangeKind uint8

// Kinds of change.
const (
	ChangeModify ChangeKind = iota
	ChangeAdd
	ChangeDelete
)

// Change is a path of the container (absolute) that its writable layer
// changes.
type Change struct {
	Path string
	Kind ChangeKind
}

// Changes lists what the container changed in its image's file system,
// in the order of a walk of the writable layer (lexical, parents first),
// as `docker diff` shows it. A directory that holds a change is reported
// modified, even when only its children changed. Mount points the runtime
// made for the container's bind mounts (/etc/hosts...) are left out:
// docker keeps them in its init layer, under the writable one.
func (m *Manager) Changes(ctx context.Context, id string) ([]Change, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	lowers, err := m.lowerDirs(ctx, c)
	if err != nil {
		return nil, err
	}
	return LayerChanges(filepath.Join(c.Dir, "upper"), lowers, m.mountPoints(c))
}

// DiffTar streams the container's writable layer as an uncompressed OCI
// image layer: added and changed files as they are, a removed name as an
// empty file ".wh.<name>" and a directory that hides its lower contents
// with a ".wh..wh..opq" entry in it. It is the layer `docker commit` adds
// to the image (the caller pauses the container if it wants a still
// picture). The runtime's mount points are left out, as by Changes.
func (m *Manager) DiffTar(ctx context.Context, id string) (io.ReadCloser, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return LayerTar(filepath.Join(c.Dir, "upper"), m.mountPoints(c))
}

// LayerTar streams the overlay upper directory upper as an OCI layer
// (see DiffTar), leaving out the paths in exclude (absolute, as the
// container sees them) unless they hold changes of their own.
func LayerTar(upper string, exclude []string) (io.ReadCloser, error) {
	if _, err := os.Lstat(upper); err != nil {
		return nil, fmt.Errorf("the writable layer: %w", err)
	}
	var patterns []string
	for p := range skippedPaths(upper, exclude) {
		patterns = append(patterns, strings.TrimPrefix(p, "/"))
	}
	slices.Sort(patterns)
	return archive.TarWithOptions(upper, &archive.TarOptions{
		Compression:     compression.None,
		WhiteoutFormat:  archive.OverlayWhiteoutFormat,
		ExcludePatterns: patterns,
	})
}

// LayerChanges walks the overlay upper directory upper over the lower
// directories lowers (top first) and lists its changes (see Changes),
// leaving out the paths in exclude that the runtime made as mount points.
func LayerChanges(upper string, lowers []string, exclude []string) ([]Change, error) {
	skip := skippedPaths(upper, exclude)
	var changes []Change
	changedDirs := map[string]bool{}
	err := filepath.WalkDir(upper, func(hostPath string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, hostPath)
		if err != nil {
			return err
		}
		p := "/" + filepath.ToSlash(rel)
		if p == "/." {
			return nil
		}
		if skip[p] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		change := Change{Path: p, Kind: ChangeAdd}
		if overlayDeleted(fi) {
			change.Kind = ChangeDelete
		} else {
			for _, l := range lowers {
				lfi, err := os.Stat(filepath.Join(l, rel))
				if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
					return err
				}
				if err != nil {
					continue
				}
				// A directory copied up only because something in it
				// changed is reported with that child (below), not here.
				if lfi.IsDir() && fi.IsDir() && fi.Mode() == lfi.Mode() && fi.ModTime().Unix() == lfi.ModTime().Unix() {
					return nil
				}
				change.Kind = ChangeModify
				break
			}
		}
		if fi.IsDir() {
			changedDirs[p] = true
		}
		if change.Kind != ChangeModify {
			// The parent of an added or removed name has changed too.
			if parent := path.Dir(p); parent != "/" && !changedDirs[parent] {
				changes = append(changes, Change{Path: parent, Kind: ChangeModify})
				changedDirs[parent] = true
			}
		}
		changes = append(changes, change)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the writable layer: %w", err)
	}
	return changes, nil
}

// overlayDeleted reports whether the upper entry records a removal: a
// whiteout device. A directory removed and made again (opaque) is
// reported as docker's overlay2 driver does: as a directory that changed,
// its new contents added, what it hid not listed.
func overlayDeleted(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// skippedPaths are the paths of exclude (container paths) that upper
// holds only as the runtime made them (see untouchedMountPoint), and the
// directories above them that upper holds for nothing else: the runtime
// copied them up to make the mount points, which docker's init layer
// hides from the writable one.
func skippedPaths(upper string, exclude []string) map[string]bool {
	skip := map[string]bool{}
	for _, p := range exclude {
		if p = path.Clean("/" + p); p != "/" && untouchedMountPoint(upper, p[1:]) {
			skip[p] = true
		}
	}
	parents := map[string]bool{}
	for p := range skip {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			parents[d] = true
		}
	}
	// Deepest first, so that a directory sees its children decided.
	dirs := slices.Collect(maps.Keys(parents))
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(upper, d))
		if err != nil {
			continue
		}
		only := true
		for _, ent := range entries {
			if !skip[path.Join(d, ent.Name())] {
				only = false
				break
			}
		}
		if only {
			skip[d] = true
		}
	}
	return skip
}

// untouchedMountPoint reports whether rel in upper is what the runtime
// leaves when it makes a mount point: an empty file or directory (or
// nothing). A mount point the container's own image or process filled is
// a change of its own and stays.
func untouchedMountPoint(upper, rel string) bool {
	fi, err := os.Lstat(filepath.Join(upper, rel))
	if err != nil {
		return true
	}
	switch {
	case fi.Mode().IsRegular():
		return fi.Size() == 0
	case fi.IsDir():
		entries, err := os.ReadDir(filepath.Join(upper, rel))
		return err == nil && len(entries) == 0
	}
	return false
}

// mountPoints are the destinations of the container's bind mounts, which
// the runtime makes in the writable layer when the image lacks them.
func (m *Manager) mountPoints(c store.Container) []string {
	mounts, err := bundleMounts(c)
	if err != nil {
		return nil
	}
	var out []string
	for _, mnt := range mounts {
		out = append(out, mnt.Destination)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lowerDirs are the image layers under the container's writable layer,
// top first.
// When the image record is gone (removed by force while the container
// kept its layers), they are read from the mounted overlay's options.
func (m *Manager) lowerDirs(ctx context.Context, c store.Container) ([]string, error) {
	img, err := m.images.Get(ctx, c.ImageID.String())
	if err == nil {
		return m.images.SnapshotDirs(ctx, img)
	}
	if lowers := mountedLowers(m.rootfs(c)); len(lowers) > 0 {
		return lowers, nil
	}
	return nil, fmt.Errorf("the image of container %s: %w", c.ID, err)
}

// mountedLowers are the lower directories of the overlay mounted at
// target, top first (none if it is not an overlay mount).
func mountedLowers(target string) []string {
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(target))
	if err != nil || len(infos) == 0 || infos[len(infos)-1].FSType != "overlay" {
		return nil
	}
	for _, opt := range strings.Split(infos[len(infos)-1].VFSOptions, ",") {
		if v, ok := strings.CutPrefix(opt, "lowerdir="); ok {
			return strings.Split(v, ":")
		}
	}
	return nil
}
