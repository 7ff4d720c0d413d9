package runtimetest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/rootfs"
)

// Ops of Mounter.
const (
	OpMount         Op = "Mount"
	OpMountReadOnly Op = "MountReadOnly"
	OpBindBeneath   Op = "BindBeneath"
	OpStage         Op = "Stage"
	OpUnmount       Op = "Unmount"
	OpUnmountAll    Op = "UnmountAll"
)

// Mount is a mount the fake holds.
type Mount struct {
	Op     Op // how it was made: OpMount, OpMountReadOnly, OpBindBeneath or OpStage
	Target string
	// Lowers of an overlay (OpMount, OpMountReadOnly); Source of a bind
	// or stage (for BindBeneath, root joined with sub).
	Lowers []string
	Source string
	// ReadOnly and IDMapped say how it was asked for.
	ReadOnly, IDMapped bool
}

// Mounter is a fake runtime.Mounter: it records the mounts instead of
// making them, and creates the directories a real mount needs (the mount
// point, an overlay's upper and work). An overlay's target gets a copy of
// its layers (regular files, directories and symlinks; the top layer
// wins), so that code reading the rootfs, such as the user lookup in
// /etc/passwd, sees the image's files. It is safe for concurrent use.
type Mounter struct {
	mu     sync.Mutex
	mounts map[string]Mount
	errs   map[Op]error
}

var _ runtime.Mounter = (*Mounter)(nil)

// NewMounter returns a fake with no mounts.
func NewMounter() *Mounter {
	return &Mounter{mounts: map[string]Mount{}, errs: map[Op]error{}}
}

// Fail makes every later call of op return err, until Fail(op, nil).
func (m *Mounter) Fail(op Op, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.errs, op)
		return
	}
	m.errs[op] = err
}

// Mounts returns the mounts held now, by target.
func (m *Mounter) Mounts() []Mount {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Mount
	for _, mnt := range m.mounts {
		out = append(out, mnt)
	}
	slices.SortFunc(out, func(a, b Mount) int { return strings.Compare(a.Target, b.Target) })
	return out
}

func (m *Mounter) add(mnt Mount, dirs ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.errs[mnt.Op]; err != nil {
		return err
	}
	if _, ok := m.mounts[mnt.Target]; ok {
		// berth never stacks mounts; a second one is a bug in the caller.
		return fmt.Errorf("runtimetest: %s is mounted already", mnt.Target)
	}
	for _, d := range append(dirs, mnt.Target) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	m.mounts[mnt.Target] = mnt
	return nil
}

// Mount records an overlay at target and creates target, upper and work.
func (m *Mounter) Mount(target string, lowers []string, upper, work string, idmap *rootfs.IDMap) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mounting %s: no image layers", target)
	}
	if err := m.add(Mount{Op: OpMount, Target: target, Lowers: slices.Clone(lowers), IDMapped: idmap != nil}, upper, work); err != nil {
		return err
	}
	return copyLayers(target, lowers)
}

// MountReadOnly records a read-only overlay at target and creates target.
func (m *Mounter) MountReadOnly(target string, lowers []string, idmap *rootfs.IDMap) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mounting %s: no image layers", target)
	}
	if err := m.add(Mount{Op: OpMountReadOnly, Target: target, Lowers: slices.Clone(lowers), ReadOnly: true, IDMapped: idmap != nil}); err != nil {
		return err
	}
	return copyLayers(target, lowers)
}

// BindBeneath records a bind of sub inside root at target and creates
// target as a directory. Like the real one, it fails if sub does not
// exist inside root.
func (m *Mounter) BindBeneath(root, sub, target string, ro bool) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Stat(sub); err != nil {
		return fmt.Errorf("sub path %q: %w", sub, err)
	}
	return m.add(Mount{Op: OpBindBeneath, Target: target, Source: filepath.Join(root, sub), ReadOnly: ro})
}

// Stage records a staged clone of src at target and creates target as a
// directory.
func (m *Mounter) Stage(src, target string, o rootfs.StageOptions) error {
	return m.add(Mount{Op: OpStage, Target: target, Source: src, ReadOnly: o.ReadOnly, IDMapped: o.IDMap != nil})
}

// Unmount forgets the mount at target; none is not an error.
func (m *Mounter) Unmount(target string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.errs[OpUnmount]; err != nil {
		return err
	}
	delete(m.mounts, filepath.Clean(target))
	return nil
}

// UnmountAll forgets every mount at or below dir.
func (m *Mounter) UnmountAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.errs[OpUnmountAll]; err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	for t := range m.mounts {
		if t == dir || strings.HasPrefix(t, dir+"/") {
			delete(m.mounts, t)
		}
	}
	return nil
}

// copyLayers copies lowers (top first) into target, the bottom one first.
func copyLayers(target string, lowers []string) error {
	for i := len(lowers) - 1; i >= 0; i-- {
		src := lowers[i]
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			dst := filepath.Join(target, rel)
			switch {
			case d.IsDir():
				return os.MkdirAll(dst, 0o755)
			case d.Type()&fs.ModeSymlink != 0:
				link, err := os.Readlink(p)
				if err != nil {
					return err
				}
				os.Remove(dst)
				return os.Symlink(link, dst)
			case d.Type().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				os.Remove(dst)
				return os.WriteFile(dst, b, 0o644)
			}
			return nil // whiteouts and other special files
		})
		if err != nil {
			return fmt.Errorf("runtimetest: copying layer %s: %w", src, err)
		}
	}
	return nil
}
