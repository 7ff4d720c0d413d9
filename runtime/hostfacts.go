package runtime

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/runtime/oci"
)

// LSMs says which Linux security modules the host enforces; a front door
// refuses a confining profile berth cannot apply where one does, and
// ignores it where none does.
type LSMs struct {
	AppArmor, SELinux bool
}

// HostLSMs probes the host's security modules.
func HostLSMs() LSMs {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	aa := err == nil && strings.TrimSpace(string(b)) == "Y"
	_, err = os.Stat("/sys/fs/selinux/enforce")
	return LSMs{AppArmor: aa, SELinux: err == nil}
}

// LayersUsage is the disk use of all the containers' writable layers.
type LayersUsage struct {
	// Mountpoint is the directory that holds them.
	Mountpoint    string
	Bytes, Inodes int64
}

// WritableLayersUsage measures the containers' writable layers (the
// CRI's container file system, docker's "system df").
func (m *Manager) WritableLayersUsage() (LayersUsage, error) {
	u := LayersUsage{Mountpoint: m.rootDir}
	var err error
	u.Bytes, u.Inodes, err = snapshot.Usage(m.rootDir)
	return u, err
}

// Host is what berthd read of this machine at start (cgroup version and
// controllers, swap accounting, capabilities): the docker side reports
// it in /info.
func (m *Manager) Host() oci.Host { return m.host }

// LayerUsage measures one container's writable layer (docker's SizeRw).
// An unknown id wraps errdefs.ErrNotFound.
func (m *Manager) LayerUsage(ctx context.Context, id string) (bytes, inodes int64, err error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	bytes, inodes, err = snapshot.Usage(filepath.Join(c.Dir, "upper"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	return bytes, inodes, err
}
