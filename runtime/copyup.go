package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-runtime/berth/runtime/oci"
)

// copyUps fills, for each destination in dsts, the source of the mount
// there with what the container's root file system has at that path,
// if the source is empty: docker's copy-up of image content into a new
// volume. The image's tree is read through os.Root, so its symlinks
// never lead out of it.
func copyUps(rootfs string, mounts []oci.Mount, dsts []string) error {
	for _, dst := range dsts {
		for _, m := range mounts {
			if path.Clean(m.Destination) != path.Clean(dst) {
				continue
			}
			if err := copyUp(rootfs, dst, m.Source); err != nil {
				return fmt.Errorf("copying the image's %s into its volume: %w", dst, err)
			}
		}
	}
	return nil
}

func copyUp(rootfs, dst, target string) error {
	entries, err := os.ReadDir(target)
	if err != nil || len(entries) > 0 {
		return err
	}
	r, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer r.Close()
	rel := strings.TrimPrefix(path.Clean(dst), "/")
	if fi, err := r.Lstat(rel); errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil
	} else if err != nil {
		return err
	}
	return fs.WalkDir(r.FS(), rel, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out := filepath.Join(target, strings.TrimPrefix(p, rel))
		switch {
		case d.IsDir():
			if p != rel {
				if err := os.Mkdir(out, 0o700); err != nil {
					return err
				}
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := r.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, out); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := copyFile(r, p, out); err != nil {
				return err
			}
		default:
			return nil // devices, fifos and sockets stay behind
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(out, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return os.Chmod(out, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
}

func copyFile(r *os.Root, p, out string) error {
	in, err := r.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
