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
