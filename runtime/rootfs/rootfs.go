// Package rootfs mounts a container's root file system: an overlay of the
// image's unpacked layers (read-only lower directories) under the
// container's own writable upper directory.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// maxOptions is the size limit of mount(2)'s data argument (one page).
const maxOptions = 4096 - 1

// Mount mounts an overlay at target: lowers (top layer first) under
// upper, with work as overlayfs's work directory (same file system as
// upper). Directories are created as needed.
func Mount(target string, lowers []string, upper, work string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mounting %s: no image layers", target)
	}
	for _, d := range []string{target, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,") {
			return fmt.Errorf("layer path %q contains ':' or ','", l)
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(opts) > maxOptions {
		return fmt.Errorf("mounting %s: %d layers make overlay options of %d bytes, over the kernel's %d", target, len(lowers), len(opts), maxOptions)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting overlay at %s: %w", target, err)
	}
	return nil
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
func MountReadOnly(target string, lowers []string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if len(lowers) == 1 {
		if err := unix.Mount(lowers[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s at %s: %w", lowers[0], target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("making %s read-only: %w", target, err)
		}
		return nil
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if len(opts) > maxOptions {
		return fmt.Errorf("mounting %s: %d layers are too many for one overlay", target, len(lowers))
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts); err != nil {
		return fmt.Errorf("mounting a read-only overlay at %s: %w", target, err)
	}
	return nil
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
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s of %s: %w", sub, root, err)
	}
	if ro {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return err
		}
	}
	return nil
}

// StageRecursiveReadOnly attaches at target a clone of the mount tree at
// src in which every mount is read-only (mount_setattr with AT_RECURSIVE,
// Linux 5.12+). A bind of target (runc's rbind) copies those flags, so a
// container sees src and everything mounted below it read-only; runc 1.1
// has no "rro" option of its own.
func StageRecursiveReadOnly(src, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("cloning the mounts at %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("making the mounts at %s read-only: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the read-only clone of %s: %w", src, err)
	}
	return nil
}

// RecursiveReadOnlySupported reports whether the kernel has mount_setattr.
func RecursiveReadOnlySupported() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
}
