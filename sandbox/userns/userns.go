// Package userns creates the user namespace of a pod that asks for one (the
// CRI's NamespaceMode_POD), together with the pod's network namespace, owned
// by it, and checks that the kernel can show files through an ID mapping
// (idmapped mounts), which is what lets a pod's containers use image layers
// and volumes owned by the host's IDs.
//
// Go cannot unshare a user namespace in a multi-threaded process, so a
// holder process is cloned into the new namespaces (berth-shim's pause
// mode), berthd writes its ID maps, pins /proc/PID/ns/user and
// /proc/PID/ns/net, and kills it. The network namespace has to be created
// inside the user namespace, not beside it: a process that has joined the
// pod's user namespace (runc, for the infra process and every container)
// can only join a network namespace that namespace owns, and only then may
// it mount /sys or set the pod's net.* sysctls.
package userns

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/netns"
)

// Pod is a pod's pinned namespaces.
type Pod struct {
	// User and Net are the pins' paths.
	User, Net string
}

// New creates a user namespace with the given ID mappings and a network
// namespace owned by it, and pins them at userDir/name and netDir/name.
// holder is the argv of a program that waits until it is killed.
func New(holder []string, uids, gids []specs.LinuxIDMapping, userDir, netDir, name string) (pod Pod, err error) {
	if err := Validate(uids, gids); err != nil {
		return pod, err
	}
	cmd, err := start(holder, uids, gids, unix.CLONE_NEWNET)
	if err != nil {
		return pod, err
	}
	defer stop(cmd)
	defer func() {
		if err != nil {
			Remove(pod)
		}
	}()
	if pod.User, err = netns.PinProcess(userDir, name, cmd.Process.Pid, "user"); err != nil {
		return pod, err
	}
	if pod.Net, err = netns.PinProcess(netDir, name, cmd.Process.Pid, "net"); err != nil {
		return pod, err
	}
	return pod, nil
}

// Remove unpins both namespaces; missing pins are not an error.
func Remove(pod Pod) error {
	var errs []error
	for _, p := range []string{pod.Net, pod.User} {
		if p != "" {
			errs = append(errs, netns.Remove(p))
		}
	}
	return errors.Join(errs...)
}

// Validate checks mappings the way the CRI describes them for a pod: one
// range each for UIDs and GIDs, starting at container ID 0 (the
// container's root must be someone), within 32-bit IDs.
func Validate(uids, gids []specs.LinuxIDMapping) error {
	for _, m := range []struct {
		kind string
		maps []specs.LinuxIDMapping
	}{{"uid", uids}, {"gid", gids}} {
		if len(m.maps) != 1 {
			return fmt.Errorf("user namespace: want exactly one %s mapping, got %d: %w", m.kind, len(m.maps), errdefs.ErrInvalidArgument)
		}
		r := m.maps[0]
		switch {
		case r.ContainerID != 0:
			return fmt.Errorf("user namespace: the %s mapping must start at container ID 0 (got %d): %w", m.kind, r.ContainerID, errdefs.ErrInvalidArgument)
		case r.Size == 0:
			return fmt.Errorf("user namespace: empty %s mapping: %w", m.kind, errdefs.ErrInvalidArgument)
		case uint64(r.HostID)+uint64(r.Size) > math.MaxUint32:
			return fmt.Errorf("user namespace: %s mapping %d+%d goes past the last host ID: %w", m.kind, r.HostID, r.Size, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Probe checks that files under each path can be shown through an ID
// mapping: it clones the mount of each path and sets a mapping on the
// clone, which is never attached anywhere.
func Probe(holder []string, paths ...string) error {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 20, Size: 65536}}
	cmd, err := start(holder, m, m, 0)
	if err != nil {
		return err
	}
	defer stop(cmd)
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	for _, p := range paths {
		if err := searchable(p); err != nil {
			return err
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("cloning the mount of %s: %w", p, err)
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("idmapped mounts of %s: %w", p, err)
		}
	}
	return nil
}

// searchable checks that every directory from / down to dir lets anyone
// through: the runtime reaches bundles and root file systems as the pod's
// root, which is nobody to the host's files.
func searchable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (mode %s) is not searchable by other users, as containers in a user namespace need", d, st.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// start runs the holder in a new user namespace (plus the namespaces in
// flags) with the mappings written. Start returns once the holder has
// exec'd, so its namespaces are final.
func start(holder []string, uids, gids []specs.LinuxIDMapping, flags uintptr) (*exec.Cmd, error) {
	if len(holder) == 0 {
		return nil, errors.New("user namespace: no holder program")
	}
	cmd := exec.Command(holder[0], holder[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | flags,
		UidMappings: sysMaps(uids),
		GidMappings: sysMaps(gids),
		// Go writes "deny" to setgroups otherwise, for good: no process
		// of the pod could set its supplementary groups.
		GidMappingsEnableSetgroups: true,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("creating a user namespace: %w", err)
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

func sysMaps(in []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(in))
	for i, m := range in {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
