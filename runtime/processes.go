package runtime

import (
	"context"
	"fmt"
	"syscall"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// Processes is what the Manager needs to run its containers' processes:
// create one under a shim, start, signal and delete it through the OCI
// runtime, and learn its exit. *Launcher is the real one;
// runtime/runtimetest.Processes is a fake for unit tests of the
// Manager's life cycle without root, shims or runc.
type Processes interface {
	// Launch writes the bundle and creates the process, which waits for Start.
	Launch(ctx context.Context, req LaunchRequest) (Launched, error)
	Start(ctx context.Context, handler, id string) error
	// Kill signals the process (all: every process of the container); a
	// process that is gone is not an error.
	Kill(ctx context.Context, handler, id string, sig syscall.Signal, all bool) error
	// Delete removes the runtime's state of the process, forcibly.
	Delete(ctx context.Context, handler, id string) error
	State(ctx context.Context, handler, id string) (ocirt.State, error)
	// Wait blocks until the process exits or ctx ends.
	Wait(ctx context.Context, handler, id, bundle string) (shimapi.ExitStatus, error)
	// ExitStatus returns the exit without waiting; ok is false while the
	// process runs.
	ExitStatus(ctx context.Context, handler, id, bundle string) (st shimapi.ExitStatus, ok bool, err error)
}

var _ Processes = (*Launcher)(nil)

// Mounter makes and removes a container's mounts: the overlay rootfs,
// read-only image volumes and their sub paths, staged binds.
// rootfs.Host is the real one; runtime/runtimetest.Mounter records the
// mounts without making them.
type Mounter interface {
	Mount(target string, lowers []string, upper, work string, idmap *rootfs.IDMap) error
	MountReadOnly(target string, lowers []string, idmap *rootfs.IDMap) error
	BindBeneath(root, sub, target string, ro bool) error
	Stage(src, target string, o rootfs.StageOptions) error
	// Unmount unmounts target; one that is not mounted is not an error.
	Unmount(target string) error
	// UnmountAll unmounts everything at or below dir.
	UnmountAll(dir string) error
}

var _ Mounter = rootfs.Host{}

// errNoShims is what attach, exec, log reopening and resource updates
// answer on a Manager built without a Launcher (unit tests on fakes):
// they talk to a live shim or to the runtime binary itself.
var errNoShims = fmt.Errorf("this runtime manager has no shims: %w", errdefs.ErrUnavailable)

// shimSocket is the control socket of the container's shim.
func (m *Manager) shimSocket(id string) (string, error) {
	if m.shims == nil {
		return "", errNoShims
	}
	return m.shims.socketPath(id), nil
}

// ociRuntime is the OCI runtime of a handler, for the calls Processes does
// not cover (exec, update).
func (m *Manager) ociRuntime(handler string) (*ocirt.Runtime, error) {
	if m.shims == nil {
		return nil, errNoShims
	}
	return m.shims.Runtime(handler)
}
