// Package netns creates, pins, enters and removes network namespaces for pod
// sandboxes.
//
// A namespace lives as long as a process is in it or a file refers to it. A
// pod's namespace must outlive berthd and exist before the infra process, so
// it is pinned: /proc/self/task/<tid>/ns/net of a thread that unshared it is
// bind-mounted onto an empty file, the way iproute2's "ip netns add",
// containerd's pkg/netns and CNI's testutils do. The directory holding the
// pins is made a shared mount point, so that unmounting a pin also removes
// the copies that mount namespaces cloned later (containers, shims) hold.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// nsfsMagic is NSFS_MAGIC from linux/magic.h: the file system type of a
// namespace file and of a bind mount of one.
const nsfsMagic = 0x6e736673

// New creates a network namespace and pins it at dir/name, which must not
// exist yet. It returns the pin's path. The calling goroutine's namespace is
// not changed: the namespace is made on a locked thread that is then thrown
// away.
func New(dir, name string) (path string, err error) {
	path, err = prepare(dir, name)
	if err != nil {
		return "", err
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, the runtime ends
		// the thread, which is in the new namespace, instead of reusing it
		// for other goroutines.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		errc <- bind(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path)
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// PinProcess pins namespace kind ("net", "user", ...) of process pid at
// dir/name, which must not exist yet, and returns the pin's path. The
// namespace then outlives the process.
func PinProcess(dir, name string, pid int, kind string) (string, error) {
	path, err := prepare(dir, name)
	if err != nil {
		return "", err
	}
	if err := bind(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), path); err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// prepare makes dir a shared mount point and creates the empty file a pin
// is mounted on.
func prepare(dir, name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("namespace pin name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := ensureSharedMount(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("namespace pin %s: %w", path, errdefs.ErrAlreadyExists)
		}
		return "", fmt.Errorf("creating namespace pin: %w", err)
	}
	return path, f.Close()
}

func bind(src, path string) error {
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pinning namespace %s at %s: %w", src, path, err)
	}
	return nil
}

// ensureSharedMount makes dir a mount point with shared propagation, bind
// mounting it onto itself first when it is not a mount point, as "ip netns"
// does for /run/netns. Making a shared mount point shared again is a no-op,
// so this runs on every New: no state to go stale if someone unmounts dir.
func ensureSharedMount(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("creating netns directory: %w", err)
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mounting netns directory %s: %w", dir, err)
		}
		err = unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("making netns directory %s shared: %w", dir, err)
	}
	return nil
}

// Remove unpins the namespace at path (of any kind) and deletes the file. The namespace
// itself goes away once no process is left in it. A path that does not
// exist, or a file that is no longer (or never was) mounted, as after a
// crash half way through New or Remove, is not an error.
func Remove(path string) error {
	// A pin may be stacked if something mounted over it; unmount until the
	// file is plain again. The bound keeps a misbehaving kernel from
	// making this spin.
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point (any more), or gone
		}
		if err != nil {
			return fmt.Errorf("unmounting netns %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing netns %s: %w", path, err)
	}
	return nil
}

// Exists reports whether path is a pinned network namespace (or any
// namespace file, such as /proc/<pid>/ns/net).
func Exists(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == nsfsMagic
}

// Do runs fn on a locked OS thread that is in the network namespace at path,
// and returns fn's error. The calling goroutine's own thread is never moved:
// fn runs on a fresh goroutine that Do waits for, so sockets fn opens belong
// to the namespace, but goroutines fn starts run in the host's namespace
// (Go starts new threads from a template thread, not from the locked one).
// If the thread cannot be returned to its namespace it is discarded.
// A panic in fn is re-raised in the caller.
func Do(path string, fn func() error) error {
	if !Exists(path) {
		return fmt.Errorf("netns %s: %w", path, errdefs.ErrNotFound)
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening netns %s: %w", path, err)
	}
	defer target.Close()

	type outcome struct {
		err   error
		panic any
	}
	done := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- outcome{err: fmt.Errorf("opening current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- outcome{err: fmt.Errorf("entering netns %s: %w", path, err)}
			return
		}
		var out outcome
		func() {
			defer func() { out.panic = recover() }()
			out.err = fn()
		}()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked so that it dies with this goroutine.
			out.err = errors.Join(out.err, fmt.Errorf("returning from netns %s: %w", path, err))
		} else {
			runtime.UnlockOSThread()
		}
		done <- out
	}()
	out := <-done
	if out.panic != nil {
		panic(out.panic)
	}
	return out.err
}
