package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/chrootarchive"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/store"
)

// Copying files in and out of a container (docker cp) and exporting its
// file system work on the host's view of the container's root: the
// overlay at <bundle>/rootfs, mounted from create until remove, whether
// the container runs or not. A container path is resolved in that root
// the way the container would resolve it: symlinks, absolute or "../",
// never leave it (github.com/cyphar/filepath-securejoin). A path that
// resolves into one of the container's bind mounts (volumes) continues in
// the mount's source, again confined to it. The tar streams themselves are
// made and unpacked by moby's own archive code chrooted into that root
// (github.com/moby/go-archive/chrootarchive), so a directory swapped for a
// symlink while the copy runs cannot lead out either.

// PathStat describes a path in a container, as docker's
// container.PathStat does.
type PathStat struct {
	// Name is the last element of the path asked for.
	Name  string
	Size  int64
	Mode  fs.FileMode
	Mtime time.Time
	// LinkTarget is, for a symlink, the path it leads to in the
	// container, fully resolved there.
	LinkTarget string
}

// ErrPathNotFound is wrapped (with errdefs.ErrNotFound) by the errors of
// a container path that does not exist.
var ErrPathNotFound = errors.New("no such file or directory in the container")

// ErrNotDirectory is wrapped by the errors of a container path that
// names a directory ("x/") where a file is.
var ErrNotDirectory = fmt.Errorf("not a directory: %w", errdefs.ErrInvalidArgument)

// ExtractOptions shape ExtractToDir.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory, or a non-directory with a directory.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives the new files the container's user and group
	// instead of the archive's owners.
	CopyUIDGID bool
}

// resolved is a container path on the host.
type resolved struct {
	// root confines the operation: the container's root file system, or
	// the source of the bind mount the path is in (its directory, for a
	// mounted file).
	root string
	// host is the path on the host, under root.
	host string
	// readOnly says the path is in a read-only mount or root.
	readOnly bool
	// inMount says the path is in a bind mount.
	inMount bool
}

// StatPath describes path in the container (docker's HEAD
// /containers/{id}/archive). The last element is not followed: a symlink
// is described as such, with its resolved target.
func (m *Manager) StatPath(ctx context.Context, id, p string) (PathStat, error) {
	c, err := m.containerWithRootfs(ctx, id)
	if err != nil {
		return PathStat{}, err
	}
	_, st, err := m.statPath(c, p)
	return st, err
}

func (m *Manager) statPath(c store.Container, p string) (resolved, PathStat, error) {
	abs := archive.PreserveTrailingDotOrSeparator(filepath.Join("/", p), p)
	r, err := m.resolvePath(c, abs, false)
	if err != nil {
		return r, PathStat{}, err
	}
	fi, err := os.Lstat(r.host)
	if err != nil {
		return r, PathStat{}, pathError(p, err)
	}
	st := PathStat{Name: filepath.Base(abs), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		st.LinkTarget, err = m.containerPath(c, abs)
		if err != nil {
			return r, st, err
		}
	}
	return r, st, nil
}

// ArchivePath streams path in the container as a tar (docker's GET
// /containers/{id}/archive): a file as one entry, a directory with its
// contents, named after the last element of the path asked for (a
// symlink there is archived as the link itself).
func (m *Manager) ArchivePath(ctx context.Context, id, p string) (io.ReadCloser, PathStat, error) {
	c, err := m.containerWithRootfs(ctx, id)
	if err != nil {
		return nil, PathStat{}, err
	}
	r, st, err := m.statPath(c, p)
	if err != nil {
		return nil, st, err
	}
	abs := archive.PreserveTrailingDotOrSeparator(filepath.Join("/", p), p)
	src := filepath.Clean(r.host)
	if filepath.Base(src) == "." {
		src += string(filepath.Separator) + "."
	}
	dir, base := src, "."
	if !st.Mode.IsDir() {
		dir, base = filepath.Split(src)
	}
	tr, err := chrootarchive.Tar(dir, archive.TarResourceRebaseOpts(base, filepath.Base(abs)), r.root)
	if err != nil {
		return nil, st, fmt.Errorf("archiving %s: %w", p, err)
	}
	return tr, st, nil
}

// ExtractToDir unpacks the tar r (optionally compressed) into the
// directory path of the container (docker's PUT
// /containers/{id}/archive); a symlink at path is followed, inside the
// container. Entries cannot leave the directory's root.
func (m *Manager) ExtractToDir(ctx context.Context, id, p string, r io.Reader, o ExtractOptions) error {
	c, err := m.containerWithRootfs(ctx, id)
	if err != nil {
		return err
	}
	abs := archive.PreserveTrailingDotOrSeparator(filepath.Join("/", p), p)
	res, err := m.resolvePath(c, abs, true)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(res.host)
	if err != nil {
		return pathError(p, err)
	}
	if !fi.IsDir() {
		return errors.New("extraction point is not a directory")
	}
	if res.readOnly {
		if res.inMount {
			return invalid("mounted volume is marked read-only")
		}
		return invalid("container rootfs is marked read-only")
	}
	opts := &archive.TarOptions{NoOverwriteDirNonDir: o.NoOverwriteDirNonDir}
	if o.CopyUIDGID && (c.UID != 0 || c.GID != 0) {
		opts.ChownOpts = &archive.ChownOpts{UID: int(c.UID), GID: int(c.GID)}
	}
	if err := chrootarchive.UntarWithRoot(r, res.host, opts, res.root); err != nil {
		return fmt.Errorf("extracting to %s: %w", p, err)
	}
	return nil
}

// Export streams the container's whole root file system as a tar (docker
// export): the image and the writable layer merged, without the
// container's volumes.
func (m *Manager) Export(ctx context.Context, id string) (io.ReadCloser, error) {
	c, err := m.containerWithRootfs(ctx, id)
	if err != nil {
		return nil, err
	}
	root := m.rootfs(c)
	return chrootarchive.Tar(root, &archive.TarOptions{}, root)
}

// containerWithRootfs finds the container and makes sure its root file
// system is mounted: it is from create to remove, unless the host
// restarted in between (the bundle is under the state directory, a
// tmpfs), in which case it is mounted again, without an ID mapping.
func (m *Manager) containerWithRootfs(ctx context.Context, id string) (store.Container, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return c, err
	}
	target := m.rootfs(c)
	if rootfs.Mounted(target) {
		return c, nil
	}
	unlock := m.lock(c.ID)
	defer unlock()
	if rootfs.Mounted(target) {
		return c, nil
	}
	lowers, err := m.lowerDirs(ctx, c)
	if err != nil {
		return c, err
	}
	if err := m.mounts.Mount(target, lowers, filepath.Join(c.Dir, "upper"), filepath.Join(c.Dir, "work"), nil); err != nil {
		return c, fmt.Errorf("mounting the file system of container %s: %w", c.ID, err)
	}
	return c, nil
}

// resolvePath finds the container path abs (absolute, trailing "/" or
// "/." kept) on the host. With followLast, a symlink as last element is
// followed (inside the container); without, it is the link itself.
func (m *Manager) resolvePath(c store.Container, abs string, followLast bool) (resolved, error) {
	mounts, err := bundleMounts(c)
	if err != nil {
		return resolved{}, err
	}
	spec, _ := readSpec(c)
	rootRO := spec != nil && spec.Root != nil && spec.Root.Readonly
	if followLast {
		return resolveIn(m.rootfs(c), rootRO, mounts, abs)
	}
	// As docker: a trailing "/" or "/." resolves the whole path.
	dir, base := filepath.Split(abs)
	r, err := resolveIn(m.rootfs(c), rootRO, mounts, dir)
	if err != nil {
		return r, err
	}
	if base == "" || base == "." {
		r.host += string(filepath.Separator) + base
		return r, nil
	}
	// The last element itself may be a mount point.
	ctrDir, err := filepath.Rel(r.root, r.host)
	if err == nil && !r.inMount {
		if mnt, ok := mountAt(mounts, path.Join("/", ctrDir, base)); ok {
			return resolveMount(mnt, "/")
		}
	}
	r.host = filepath.Join(r.host, base)
	return r, nil
}

// resolveIn resolves the container path p fully in rootDir, continuing in
// the source of a bind mount the result falls in.
func resolveIn(rootDir string, rootRO bool, mounts []specs.Mount, p string) (resolved, error) {
	host, err := securejoin.SecureJoin(rootDir, p)
	if err != nil {
		return resolved{}, fmt.Errorf("resolving %s in the container: %w", p, err)
	}
	rel, err := filepath.Rel(rootDir, host)
	if err != nil {
		return resolved{}, err
	}
	ctr := path.Join("/", filepath.ToSlash(rel))
	if mnt, ok := mountAt(mounts, ctr); ok {
		sub := strings.TrimPrefix(ctr, path.Clean(mnt.Destination))
		return resolveMount(mnt, path.Join("/", sub))
	}
	return resolved{root: rootDir, host: host, readOnly: rootRO}, nil
}

// resolveMount resolves sub (absolute, in the mount) in a bind mount's
// source.
func resolveMount(mnt specs.Mount, sub string) (resolved, error) {
	ro := slices.Contains(mnt.Options, "ro")
	fi, err := os.Stat(mnt.Source)
	if err != nil {
		return resolved{}, err
	}
	if !fi.IsDir() {
		// A mounted file: its directory confines the copy.
		return resolved{root: filepath.Dir(mnt.Source), host: mnt.Source, readOnly: ro, inMount: true}, nil
	}
	host, err := securejoin.SecureJoin(mnt.Source, sub)
	if err != nil {
		return resolved{}, err
	}
	return resolved{root: mnt.Source, host: host, readOnly: ro, inMount: true}, nil
}

// mountAt is the innermost bind mount holding the container path p.
func mountAt(mounts []specs.Mount, p string) (specs.Mount, bool) {
	best, found := specs.Mount{}, false
	for _, mnt := range mounts {
		d := path.Clean(mnt.Destination)
		if p != d && !strings.HasPrefix(p, d+"/") {
			continue
		}
		if !found || len(d) > len(path.Clean(best.Destination)) {
			best, found = mnt, true
		}
	}
	return best, found
}

// containerPath resolves abs fully in the container and returns where it
// leads, as a container path.
func (m *Manager) containerPath(c store.Container, abs string) (string, error) {
	root := m.rootfs(c)
	host, err := securejoin.SecureJoin(root, abs)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, host)
	if err != nil {
		return "", err
	}
	return path.Join("/", filepath.ToSlash(rel)), nil
}

// bundleMounts are the container's bind mounts whose source is there,
// from its OCI spec (none when the bundle is gone, after a host restart).
func bundleMounts(c store.Container) ([]specs.Mount, error) {
	spec, err := readSpec(c)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []specs.Mount
	for _, mnt := range spec.Mounts {
		bind := mnt.Type == "bind" || slices.Contains(mnt.Options, "bind") || slices.Contains(mnt.Options, "rbind")
		if !bind || !filepath.IsAbs(mnt.Source) {
			continue
		}
		if _, err := os.Stat(mnt.Source); err != nil {
			// A staged source (read-only or ID-mapped) was detached after create.
			continue
		}
		out = append(out, mnt)
	}
	return out, nil
}

func readSpec(c store.Container) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("the spec of container %s: %w", c.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("the spec of container %s: %w", c.ID, err)
	}
	return &spec, nil
}

// invalid is a refusal in docker's own words, wrapping
// errdefs.ErrInvalidArgument without adding its text.
type invalid string

func (e invalid) Error() string { return string(e) }
func (e invalid) Unwrap() error { return errdefs.ErrInvalidArgument }

// pathError is the error of a container path that cannot be read.
func pathError(p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w: %w", p, ErrPathNotFound, errdefs.ErrNotFound)
	case errors.Is(err, syscall.ENOTDIR):
		// Not the host path: the client knows only the container's.
		return fmt.Errorf("%s: %w", p, ErrNotDirectory)
	}
	return err
}
