// Package rootfs mounts a container's root file system: an overlay of the
// image's unpacked layers (read-only lower directories) under the
// container's own writable upper directory.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// maxOptions is the size limit of mount(2)'s data argument (one page).
const maxOptions = 4096 - 1

// IDMap shows a mount's files through the ID mapping of a user namespace:
// a file the host's uid 0 owns appears owned by whoever the namespace maps
// to it, usually the host's root being the container's UID (HostUID,
// HostGID).
type IDMap struct {
	// UserNS is an open user namespace file (/proc/PID/ns/user or a pin).
	UserNS *os.File
	// HostUID and HostGID are the host IDs of the namespace's root: they
	// own the new writable layer.
	HostUID, HostGID int
}

// Mount mounts an overlay at target: lowers (top layer first) under
// upper, with work as overlayfs's work directory (same file system as
// upper). Directories are created as needed. With idmap, the layers are
// seen through its mapping and the new upper directory is owned by the
// namespace's root: overlayfs itself cannot be idmapped, but (Linux 5.19+)
// its layers can, which is what containerd does too.
func Mount(target string, lowers []string, upper, work string, idmap *IDMap) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mounting %s: no image layers", target)
	}
	for _, d := range []string{target, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if idmap != nil {
		for _, d := range []string{upper, work} {
			if err := os.Lchown(d, idmap.HostUID, idmap.HostGID); err != nil {
				return err
			}
		}
	}
	return mountOverlay(target, lowers, ",upperdir="+upper+",workdir="+work, 0, idmap)
}

// mountOverlay mounts an overlay of lowers (top first) at target with
// more options and flags; with idmap, over idmapped clones of the layers,
// detached again once the overlay holds its own.
func mountOverlay(target string, lowers []string, more string, flags uintptr, idmap *IDMap) (err error) {
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,") {
			return fmt.Errorf("layer path %q contains ':' or ','", l)
		}
	}
	if idmap != nil {
		mapped, release, err := mapLayers(target+".lower", lowers, idmap)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, release()) }()
		lowers = mapped
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + more
	if len(opts) > maxOptions {
		return fmt.Errorf("mounting %s: %d layers make overlay options of %d bytes, over the kernel's %d", target, len(lowers), len(opts), maxOptions)
	}
	if err := unix.Mount("overlay", target, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mounting overlay at %s: %w", target, err)
	}
	return nil
}

// mapLayers attaches an idmapped clone of each layer at dir/<n> for an
// overlay mount to use. Overlayfs takes private clones of its layers, so
// release detaches them (and removes dir) as soon as the overlay is
// mounted.
func mapLayers(dir string, lowers []string, idmap *IDMap) (mapped []string, release func() error, err error) {
	release = func() error {
		var errs []error
		for _, d := range mapped {
			errs = append(errs, Unmount(d))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return os.RemoveAll(dir)
	}
	for i, l := range lowers {
		d := filepath.Join(dir, strconv.Itoa(i))
		if err := Stage(l, d, StageOptions{IDMap: idmap}); err != nil {
			return nil, nil, errors.Join(err, release())
		}
		mapped = append(mapped, d)
	}
	return mapped, release, nil
}

// Unmount unmounts target and everything below it; a target that is not
// mounted (or does not exist) is not an error.
func Unmount(target string) error {
	for i := 0; i < 16; i++ {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmounting %s: %w", target, err)
			}
			return nil
		default:
			return fmt.Errorf("unmounting %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmounting %s: still mounted after 16 unmounts", target)
}

// UnmountAll unmounts every mount at or below dir, the latest first (so a
// mount goes before what it was stacked on or bound from). Call it before
// removing a directory that may hold mounts: os.RemoveAll would descend
// into them and delete what they show (an image layer, a volume).
func UnmountAll(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := Unmount(mounts[i]); err != nil {
			return err
		}
	}
	return nil
}

// MountsUnder lists the mount points at or below dir, in the order they
// were mounted.
func MountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Clean(dir)))
	if err != nil {
		return nil, fmt.Errorf("listing the mounts under %s: %w", dir, err)
	}
	out := make([]string, len(infos))
	for i, m := range infos {
		out[i] = m.Mountpoint
	}
	return out, nil
}

// Mounted reports whether target is a mount point.
func Mounted(target string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(target, &st) != nil || unix.Lstat(target+"/..", &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino
}

// MountReadOnly mounts the layers (top first) read-only at target: an
// overlay of lower directories only, or a read-only bind of a single one.
// With idmap, the layers are seen through its mapping.
func MountReadOnly(target string, lowers []string, idmap *IDMap) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mounting %s: no image layers", target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	switch {
	case len(lowers) > 1:
		return mountOverlay(target, lowers, "", unix.MS_RDONLY, idmap)
	case idmap != nil:
		return Stage(lowers[0], target, StageOptions{ReadOnly: true, IDMap: idmap})
	default:
		return bind(lowers[0], target, true)
	}
}

// BindBeneath bind-mounts path sub, resolved inside root (symlinks in it
// cannot leave root), at target; read-only when ro.
func BindBeneath(root, sub, target string, ro bool) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.Open(sub)
	if err != nil {
		return fmt.Errorf("sub path %q: %w", sub, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else {
		err = os.WriteFile(target, nil, 0o644)
	}
	if err != nil {
		return err
	}
	if err := bind(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), target, ro); err != nil {
		return fmt.Errorf("sub path %q of %s: %w", sub, root, err)
	}
	return nil
}

// bind bind-mounts src at target, read-only when ro.
func bind(src, target string, ro bool) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s at %s: %w", src, target, err)
	}
	if ro {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("making %s read-only: %w", target, err)
		}
	}
	return nil
}

// StageOptions say how Stage changes the mounts it clones.
type StageOptions struct {
	// ReadOnly makes every mount of the clone read-only, recursively.
	ReadOnly bool
	// IDMap shows the files of every mount of the clone through a user
	// namespace's ID mapping.
	IDMap *IDMap
}

// Stage attaches at target (created as a directory or an empty file, like
// src) a clone of the mount tree at src changed as o says, with
// mount_setattr (Linux 5.12+). A bind of target (runc's rbind) copies the
// changed flags, which is how berth gives runc 1.1 what it has no option
// for: recursive read-only binds and idmapped binds. A submount whose file
// system cannot be idmapped is left out of an idmapped (not read-only)
// clone rather than failing it.
func Stage(src, target string, o StageOptions) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
		err = os.WriteFile(target, nil, 0o644)
	}
	if err != nil {
		return err
	}
	var attr unix.MountAttr
	if o.ReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if o.IDMap != nil {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(o.IDMap.UserNS.Fd())
	}
	fd, err := cloneTree(src, unix.AT_RECURSIVE, &attr)
	if err != nil && o.IDMap != nil && !o.ReadOnly && errors.Is(err, unix.EINVAL) {
		fd, err = cloneTree(src, 0, &attr)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the clone of %s: %w", src, err)
	}
	return nil
}

// cloneTree clones the mount at src (with its submounts when recursive is
// AT_RECURSIVE) and sets attr on the clone; it returns the detached
// clone's file descriptor.
func cloneTree(src string, recursive int, attr *unix.MountAttr) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|uint(recursive))
	if err != nil {
		return -1, fmt.Errorf("cloning the mounts at %s: %w", src, err)
	}
	if err := unix.MountSetattr(fd, "", uint(unix.AT_EMPTY_PATH|recursive), attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("changing the clone of the mounts at %s: %w", src, err)
	}
	return fd, nil
}

// RecursiveReadOnlySupported reports whether the kernel has mount_setattr.
func RecursiveReadOnlySupported() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
}
