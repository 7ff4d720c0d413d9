package oci

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// This file holds the parts that read the machine: ReadHost and the device
// lookups behind lookupDevices and allHostDevices.

// capSysResource is CAP_SYS_RESOURCE's bit number.
const capSysResource = 24

// ReadHost reads the facts Generate needs from this machine: run it once at
// daemon start. Whatever cannot be read falls back to the safe side (no
// lowering of oom_score_adj, the current RLIMIT_NOFILE hard limit).
func ReadHost() Host {
	var h Host
	h.CapMask = effectiveCaps()
	// CAP_SYS_RESOURCE lifts the rlimit and oom_score_adj limits only in
	// the initial user namespace.
	privileged := h.CapMask&(1<<capSysResource) != 0 && initialUserNamespace()

	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		h.NofileHardLimit = rl.Max
	}
	if privileged {
		// With CAP_SYS_RESOURCE runc may raise the hard limit up to
		// fs.nr_open.
		if n, err := readInt("/proc/sys/fs/nr_open"); err == nil && n > 0 {
			h.NofileHardLimit = uint64(n)
		}
	}

	h.MinOOMScoreAdj = -1000
	if !privileged {
		// Without CAP_SYS_RESOURCE a process cannot go below its own value,
		// and neither can runc, its child.
		h.MinOOMScoreAdj = 0
		if n, err := readInt("/proc/self/oom_score_adj"); err == nil {
			h.MinOOMScoreAdj = int(n)
		}
	}

	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil {
		h.CgroupV2 = st.Type == unix.CGROUP2_SUPER_MAGIC
	}
	h.Controllers, h.SwapAccounting = cgroupControllers(h.CgroupV2)
	if n, err := readInt("/proc/sys/kernel/cap_last_cap"); err == nil && n > 0 {
		h.CapLastCap = int(n)
	}
	return h
}

// effectiveCaps is this process's CapEff mask (0 if unreadable).
func effectiveCaps() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("CapEff:")); ok {
			mask, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			if err == nil {
				return mask
			}
		}
	}
	return 0
}

// initialUserNamespace reports whether uid_map is the identity map of the
// whole range, which is the case only in the initial user namespace.
func initialUserNamespace() bool {
	f, err := os.Open("/proc/self/uid_map")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.Join(strings.Fields(sc.Text()), " "))
	}
	return len(lines) == 1 && lines[0] == "0 0 4294967295"
}

func readInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// skipDevDirs are directories under /dev that hold no devices to pass on:
// the container gets its own pts, shm and mqueue.
var skipDevDirs = map[string]bool{"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true}

// hostDevicesAt is the real lookupDevices. Paths in the result start with p
// as given, even where p is a symlink.
func hostDevicesAt(p string) ([]hostDevice, error) {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, ok, err := statDevice(resolved)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is not a device node: %w", p, errdefs.ErrInvalidArgument)
		}
		d.Path = p
		return []hostDevice{d}, nil
	}
	var out []hostDevice
	err = filepath.WalkDir(resolved, func(q string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil // devices come and go; some dirs are private
			}
			return err
		}
		if e.IsDir() {
			if q != resolved && skipDevDirs[e.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Name() == "console" || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		d, ok, err := statDevice(q)
		if err != nil || !ok {
			return nil // vanished or changed under us
		}
		d.Path = filepath.Join(p, strings.TrimPrefix(q, resolved))
		out = append(out, d)
		return nil
	})
	return out, err
}

// statDevice describes the device node at p (not following symlinks); ok is
// false for anything but a character or block device.
func statDevice(p string) (hostDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return hostDevice{}, false, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return hostDevice{}, false, nil
	}
	rdev := uint64(st.Rdev) //nolint:unconvert // not uint64 on every arch
	return hostDevice{
		Path:  p,
		Type:  typ,
		Major: int64(unix.Major(rdev)),
		Minor: int64(unix.Minor(rdev)),
		Mode:  fs.FileMode(st.Mode &^ unix.S_IFMT).Perm(),
		UID:   st.Uid,
		GID:   st.Gid,
	}, true, nil
}
