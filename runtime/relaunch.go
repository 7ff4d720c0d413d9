package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// Relaunch makes an exited container created again, in place: the same
// id, writable layer, bundle (the spec made at create) and log file
// (appended to), with a new process under a new shim that waits for
// Start. The docker side restarts containers so ("docker start" of an
// exited container, "docker restart", restart policies); the CRI never
// does (the kubelet makes a new container per attempt). A container that
// has not exited wraps errdefs.ErrFailedPrecondition.
func (m *Manager) Relaunch(ctx context.Context, id string) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(c.ID)
	defer unlock()
	if c, err = m.Get(ctx, c.ID); err != nil {
		return err
	}
	if StateOf(c) != Exited {
		return fmt.Errorf("container %s has not exited: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	spec, err := readSpec(c)
	if err != nil {
		return fmt.Errorf("restarting container %s: %w", c.ID, err)
	}
	staged := filepath.Join(c.Bundle, "staged") + "/"
	for _, mnt := range spec.Mounts {
		if strings.HasPrefix(mnt.Source, staged) {
			// Staged trees were let go once the first process had them.
			return fmt.Errorf("container %s has recursively read-only or ID-mapped mounts and cannot be restarted in place: %w", c.ID, errdefs.ErrFailedPrecondition)
		}
	}
	if c.Resources != nil && spec.Linux != nil {
		// The limits in force (docker update changes them after create),
		// with the device rules the spec was made with.
		var devices []specs.LinuxDeviceCgroup
		if spec.Linux.Resources != nil {
			devices = spec.Linux.Resources.Devices
		}
		res := *m.supportedResources(c.Resources)
		res.Devices = devices
		spec.Linux.Resources = &res
	}
	if err := m.launcher.Delete(ctx, c.RuntimeHandler, c.ID); err != nil {
		return fmt.Errorf("restarting container %s: removing the exited process: %w", c.ID, err)
	}
	launched, err := m.launcher.Launch(ctx, LaunchRequest{
		ID: c.ID, Handler: c.RuntimeHandler, Bundle: c.Bundle, Spec: spec,
		LogPath: c.LogPath, Stdin: c.Process.Stdin, StdinOnce: c.Process.StdinOnce,
	})
	if err != nil {
		return fmt.Errorf("restarting container %s: %w", c.ID, err)
	}
	_, err = m.update(c.ID, func(c *store.Container) {
		c.Pid, c.ShimPid = launched.Pid, launched.ShimPid
		c.StartedAt, c.FinishedAt = time.Time{}, time.Time{}
		c.ExitCode, c.Reason, c.Message, c.Paused = 0, "", "", false
	})
	return err
}
