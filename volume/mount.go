package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Mount readies the volume called name for a container that is about to
// start and returns the host path to bind-mount: its _data directory,
// with the volume's file system mounted there first when its options
// name one (and it is not mounted yet). Call it before every start.
func (m *Manager) Mount(ctx context.Context, name string) (string, error) {
	v, err := m.Get(ctx, name)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.Mountpoint(v)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("mount %s: %w", name, err)
	}
	if v.Options["type"] == "" && v.Options["device"] == "" {
		return p, nil
	}
	if mounted, err := mountinfo.Mounted(p); err != nil {
		return "", fmt.Errorf("mount %s: %w", name, err)
	} else if mounted {
		return p, nil
	}
	flags, data, err := parseMountOptions(v.Options["o"])
	if err != nil {
		return "", &opError{op: "mount", name: name, err: err}
	}
	typ := v.Options["type"]
	if flags&unix.MS_BIND != 0 {
		typ = ""
	}
	// A bind mount ignores the other flags until it is remounted.
	if err := unix.Mount(v.Options["device"], p, typ, flags, data); err != nil {
		return "", fmt.Errorf("error while mounting volume '%s': failed to mount local volume: mount %s:%s, flags: %#x, data: %s: %w",
			p, v.Options["device"], p, flags, data, err)
	}
	if ro := flags & (unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC); flags&unix.MS_BIND != 0 && ro != 0 {
		if err := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|ro, ""); err != nil {
			unix.Unmount(p, unix.MNT_DETACH)
			return "", fmt.Errorf("mount %s: remounting the bind mount: %w", name, err)
		}
	}
	m.log.Debug("mounted volume", "volume", name, "type", typ, "device", v.Options["device"])
	return p, nil
}

// Unmount releases the volume called name for the container that
// stopped: its file system (if it has one) is unmounted when no other
// running container mounts the volume. A volume removed meanwhile is not
// an error.
func (m *Manager) Unmount(ctx context.Context, name, containerID string) error {
	var v store.Volume
	busy := false
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		if v, err = get(tx, name); err != nil {
			return err
		}
		users, err := usersOf(tx, name)
		if err != nil {
			return err
		}
		for _, id := range users[name] {
			if id == containerID {
				continue
			}
			c, err := store.Get[store.Container](tx, store.Containers, id)
			if err == nil && !c.StartedAt.IsZero() && c.FinishedAt.IsZero() {
				busy = true
			}
		}
		return nil
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil || busy || v.Options["type"] == "" && v.Options["device"] == "" {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := unmountAll(m.Mountpoint(v)); err != nil {
		return fmt.Errorf("unmount %s: %w", name, err)
	}
	m.log.Debug("unmounted volume", "volume", name)
	return nil
}

// unmountAll unmounts every mount at or below p, deepest first.
func unmountAll(p string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(p))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, mnt := range mounts {
		if err := unix.Unmount(mnt.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s: %w", mnt.Mountpoint, err)
		}
	}
	return nil
}

// mountFlags are mount(8)'s flag options; the others are the file
// system's data.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
}

// parseMountOptions splits o (comma-separated, as mount -o) into flags
// and the file system's data string.
func parseMountOptions(o string) (uintptr, string, error) {
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if strings.ContainsAny(opt, "\x00") {
			return 0, "", &invalid{fmt.Sprintf("invalid mount option %q", opt)}
		}
		data = append(data, opt)
	}
	return flags, strings.Join(data, ","), nil
}
