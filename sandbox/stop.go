package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/netns"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/store"
)

// Stop kills the pod's containers (at once: the CRI gives them no grace
// period here), then stops the infra process and detaches the network.
// It is idempotent and works on half-made sandboxes; an unknown id wraps
// errdefs.ErrNotFound (the CRI adapter treats that as done).
func (m *Manager) Stop(ctx context.Context, id string) error {
	sb, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := m.eachContainer(ctx, sb.ID, func(ctx context.Context, cid string) error {
		return m.containers.Stop(ctx, cid, 0, "")
	}); err != nil {
		return err
	}
	return m.teardown(ctx, sb.ID, false)
}

// Remove removes the pod's containers, stops the sandbox if needed and
// deletes every trace of it. An unknown id wraps errdefs.ErrNotFound.
func (m *Manager) Remove(ctx context.Context, id string) error {
	sb, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := m.eachContainer(ctx, sb.ID, m.containers.Remove); err != nil {
		return err
	}
	return m.teardown(ctx, sb.ID, true)
}

// eachContainer applies fn to every container of the sandbox; one that
// is gone meanwhile is skipped.
func (m *Manager) eachContainer(ctx context.Context, sandboxID string, fn func(ctx context.Context, id string) error) error {
	cs, err := m.containers.Match(ctx, runtime.ContainerFilter{SandboxIDPrefix: sandboxID})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := fn(ctx, c.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
	}
	return nil
}

// teardown undoes a sandbox step by step, each step safe to repeat, and
// records progress so that a crash half way is finished by recovery.
func (m *Manager) teardown(ctx context.Context, id string, remove bool) error {
	unlock := m.lock(id)
	defer unlock()
	sb, err := m.load(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil // removed meanwhile
	}
	if err != nil {
		return err
	}
	var errs []error
	bundle := filepath.Join(sb.Dir, "infra")
	if sb.InfraPid != 0 || sb.ShimPid != 0 {
		m.launcher.Kill(ctx, sb.RuntimeHandler, id, syscall.SIGKILL, true)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := m.launcher.Wait(wctx, sb.RuntimeHandler, id, bundle); err != nil {
			errs = append(errs, fmt.Errorf("waiting for the infra process: %w", err))
		}
		cancel()
	}
	if err := m.launcher.Delete(ctx, sb.RuntimeHandler, id); err != nil {
		errs = append(errs, err)
	}
	if sb.NetworkAttached {
		if err := m.net.Teardown(ctx, podNetwork(sb, nil)); err != nil {
			errs = append(errs, fmt.Errorf("tearing down the pod network: %w", err))
		} else if sb, err = m.update(id, func(s *store.Sandbox) { s.NetworkAttached = false }); err != nil {
			errs = append(errs, err)
		}
	}
	// The user namespace after the network namespace it owns.
	for _, pin := range []string{sb.NetNS, sb.UserNS} {
		if pin == "" {
			continue
		}
		if err := netns.Remove(pin); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if sb.StoppedAt.IsZero() {
		if _, err := m.update(id, func(s *store.Sandbox) { s.StoppedAt = time.Now().UTC() }); err != nil {
			return err
		}
		if !sb.ReadyAt.IsZero() {
			m.publish(events.Stopped, sb)
		}
	}
	if !remove {
		return nil
	}
	if err := rootfs.UnmountAll(sb.Dir); err != nil { // /dev/shm
		return err
	}
	if err := os.RemoveAll(sb.Dir); err != nil {
		return err
	}
	if err := m.db.Update(func(tx *store.Tx) error {
		if err := store.ReleaseName(tx, store.SandboxNames, sb.Key, id); err != nil {
			return err
		}
		return store.Delete(tx, store.Sandboxes, id)
	}); err != nil {
		return err
	}
	m.names.Release(sb.Key, id)
	m.locks.Delete(id)
	if !sb.ReadyAt.IsZero() {
		m.publish(events.Deleted, sb)
	}
	return nil
}

// InfraAlive reports whether the sandbox's infra process still runs.
func (m *Manager) InfraAlive(ctx context.Context, sb store.Sandbox) bool {
	if sb.InfraPid == 0 {
		return false
	}
	_, ok, err := m.launcher.ExitStatus(ctx, sb.RuntimeHandler, sb.ID, filepath.Join(sb.Dir, "infra"))
	return err == nil && !ok
}

// Recover runs at start-up: it reserves the names of live sandboxes,
// finishes the teardown of half-made ones and of those whose infra
// process died while berthd was away.
func (m *Manager) Recover(ctx context.Context) error {
	sbs, err := m.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, sb := range sbs {
		log := m.log.With("sandbox", sb.ID[:12])
		switch {
		case sb.ReadyAt.IsZero() && sb.StoppedAt.IsZero():
			log.Info("removing a sandbox whose creation was interrupted")
			errs = append(errs, m.teardown(ctx, sb.ID, true))
			continue
		case sb.Ready() && !m.InfraAlive(ctx, sb):
			log.Info("infra process died while berthd was away; stopping the sandbox")
			errs = append(errs, m.teardown(ctx, sb.ID, false))
		case !sb.StoppedAt.IsZero() && (sb.NetworkAttached || netns.Exists(sb.NetNS) || netns.Exists(sb.UserNS)):
			// A stop that a crash interrupted.
			errs = append(errs, m.teardown(ctx, sb.ID, false))
		}
		errs = append(errs, m.names.Reserve(sb.Key, sb.ID))
	}
	return errors.Join(errs...)
}

func (m *Manager) load(id string) (store.Sandbox, error) {
	var sb store.Sandbox
	err := m.db.View(func(tx *store.Tx) error {
		var err error
		sb, err = store.Get[store.Sandbox](tx, store.Sandboxes, id)
		return err
	})
	return sb, err
}
