package oci

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// defaultMounts returns docker's default mounts. /sys and /sys/fs/cgroup are
// read-only unless privileged.
func defaultMounts(privileged bool, shmSize int64) []specs.Mount {
	sysMode := "ro"
	if privileged {
		sysMode = "rw"
	}
	if shmSize == 0 {
		shmSize = DefaultShmSize
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", sizeOption(shmSize)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysMode}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", sysMode}},
	}
}

func sizeOption(bytes int64) string {
	if bytes%1024 == 0 {
		return fmt.Sprintf("size=%dk", bytes/1024)
	}
	return fmt.Sprintf("size=%d", bytes)
}

// mounts returns the default mounts not overridden by c.Mounts, then
// c.Mounts ordered by depth, and the rootfs propagation the user mounts need
// ("" leaves runc's default).
func mounts(c Container) ([]specs.Mount, string, error) {
	user := slices.Clone(c.Mounts)
	seen := map[string]bool{}
	for i, m := range user {
		if !path.IsAbs(m.Destination) {
			return nil, "", fmt.Errorf("mount destination %q is not an absolute path: %w", m.Destination, errdefs.ErrInvalidArgument)
		}
		dst := path.Clean(m.Destination)
		if seen[dst] {
			return nil, "", fmt.Errorf("duplicate mount point %s: %w", dst, errdefs.ErrInvalidArgument)
		}
		seen[dst] = true
		user[i].Destination = dst
	}
	// Parents before children, whatever order the caller used (as docker
	// and containerd do); equal depths keep the caller's order.
	slices.SortStableFunc(user, func(a, b Mount) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})

	var out []specs.Mount
	for _, m := range defaultMounts(c.Privileged, c.ShmSize) {
		if seen[m.Destination] || (seen["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		out = append(out, m)
	}
	rootPropagation := ""
	for _, m := range user {
		sm, propagation, err := userMount(m)
		if err != nil {
			return nil, "", err
		}
		switch {
		case propagation == "rshared":
			rootPropagation = "rshared"
		case propagation == "rslave" && rootPropagation != "rshared":
			rootPropagation = "rslave"
		}
		out = append(out, sm)
	}
	return out, rootPropagation, nil
}

// userMount converts m; bind mounts get "rbind", their propagation and
// "ro"/"rw".
func userMount(m Mount) (specs.Mount, string, error) {
	typ := m.Type
	if typ == "" {
		typ = "bind"
	}
	propagation, err := normalizePropagation(m.Propagation)
	if err != nil {
		return specs.Mount{}, "", fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	if m.RecursiveReadOnly && (!m.ReadOnly || typ != "bind" || (propagation != "" && propagation != "rprivate" && propagation != "private")) {
		return specs.Mount{}, "", fmt.Errorf("mount %s: recursive read-only needs a read-only, private bind mount: %w", m.Destination, errdefs.ErrInvalidArgument)
	}
	var opts []string
	if typ == "bind" {
		if !path.IsAbs(m.Source) {
			return specs.Mount{}, "", fmt.Errorf("bind mount %s: source %q is not an absolute path: %w", m.Destination, m.Source, errdefs.ErrInvalidArgument)
		}
		opts = append(opts, "rbind")
		if propagation == "" {
			propagation = "rprivate"
		}
	}
	if propagation != "" {
		opts = append(opts, propagation)
	}
	if m.ReadOnly {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	opts = append(opts, m.Options...)
	return specs.Mount{Destination: m.Destination, Type: typ, Source: m.Source, Options: opts}, propagation, nil
}

func normalizePropagation(p string) (string, error) {
	switch p {
	case "":
		return "", nil
	case "private", "rprivate":
		return "rprivate", nil
	case "slave", "rslave":
		return "rslave", nil
	case "shared", "rshared":
		return "rshared", nil
	}
	return "", fmt.Errorf("unknown mount propagation %q: %w", p, errdefs.ErrInvalidArgument)
}
