package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/sys/signal"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
	"github.com/berth-runtime/berth/store"
)

// State of a container, derived from its record.
type State int

// Container states, as the CRI names them.
const (
	Created State = iota
	Running
	Exited
	Unknown
)

// StateOf derives a container's state from its timestamps.
func StateOf(c store.Container) State {
	switch {
	case !c.FinishedAt.IsZero():
		return Exited
	case !c.StartedAt.IsZero():
		return Running
	case c.Pid != 0:
		return Created
	}
	return Unknown
}

// Start starts a created container.
func (m *Manager) Start(ctx context.Context, id string) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(c.ID)
	defer unlock()
	if c, err = m.Get(ctx, c.ID); err != nil {
		return err
	}
	if st := StateOf(c); st != Created {
		return fmt.Errorf("container %s is not in the created state: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if err := m.launcher.Start(ctx, c.RuntimeHandler, c.ID); err != nil {
		// The process may have been created and died since; record what
		// the shim saw, else the failure.
		if st, ok, _ := m.launcher.ExitStatus(ctx, c.RuntimeHandler, c.ID, c.Bundle); ok {
			m.recordExit(c.ID, st, "StartError: "+err.Error())
		}
		return fmt.Errorf("starting container %s: %w", c.ID, err)
	}
	if c, err = m.update(c.ID, func(c *store.Container) { c.StartedAt = time.Now().UTC() }); err != nil {
		return err
	}
	m.publish(events.Started, c)
	m.watch(c)
	return nil
}

// watch waits in the background for the container's exit and records it.
func (m *Manager) watch(c store.Container) {
	m.watchers.Add(1)
	go func() {
		defer m.watchers.Done()
		st, err := m.launcher.Wait(m.watchCtx, c.RuntimeHandler, c.ID, c.Bundle)
		if err != nil {
			if m.watchCtx.Err() == nil {
				m.log.Warn("waiting for container", "container", c.ID[:12], "error", err)
			}
			return
		}
		m.recordExit(c.ID, st, "")
	}()
}

func (m *Manager) recordExit(id string, st shimapi.ExitStatus, message string) {
	recorded := false
	c, err := m.update(id, func(c *store.Container) {
		if !c.FinishedAt.IsZero() {
			return
		}
		recorded = true
		c.FinishedAt = st.ExitedAt
		if c.FinishedAt.IsZero() {
			c.FinishedAt = time.Now().UTC()
		}
		if c.StartedAt.IsZero() {
			c.StartedAt = c.FinishedAt
		}
		c.ExitCode = int32(st.ExitCode)
		switch {
		case st.OOMKilled:
			c.Reason = "OOMKilled"
		case message != "":
			c.Reason = "Error"
		case st.ExitCode == 0:
			c.Reason = "Completed"
		default:
			c.Reason = "Error"
		}
		c.Message = message
		c.Paused = false
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		m.log.Error("recording a container exit", "container", id, "error", err)
	}
	if err == nil && recorded {
		m.publish(events.Stopped, c)
	}
}

// Stop sends stopSignal, or else the container's own (recorded at
// create: the request's, the image's STOPSIGNAL, else SIGTERM), waits up
// to timeout, then kills it. Stopping a container that is not running
// succeeds; an unknown id wraps errdefs.ErrNotFound.
func (m *Manager) Stop(ctx context.Context, id string, timeout time.Duration, stopSignal string) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if StateOf(c) == Exited {
		return nil
	}
	if c.Paused {
		// Frozen processes cannot act on the signal: thaw them first.
		if err := m.Unpause(ctx, c.ID); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return err
		}
	}
	if StateOf(c) != Running {
		// Created, never started: kill its waiting init.
		timeout = 0
	}
	sig := ParseSignal(cmp.Or(stopSignal, c.StopSignal), syscall.SIGTERM)
	if timeout > 0 {
		if err := m.launcher.Kill(ctx, c.RuntimeHandler, c.ID, sig, false); err != nil {
			return err
		}
		if m.waitExit(ctx, c, timeout) {
			return nil
		}
	}
	if err := m.launcher.Kill(ctx, c.RuntimeHandler, c.ID, syscall.SIGKILL, true); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := m.launcher.Wait(wctx, c.RuntimeHandler, c.ID, c.Bundle)
	if err != nil {
		return fmt.Errorf("container %s did not die after SIGKILL: %w", c.ID, err)
	}
	m.recordExit(c.ID, st, "")
	return nil
}

// waitExit waits up to timeout for the container's exit and records it.
func (m *Manager) waitExit(ctx context.Context, c store.Container, timeout time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := m.launcher.Wait(wctx, c.RuntimeHandler, c.ID, c.Bundle)
	if err != nil {
		return false
	}
	m.recordExit(c.ID, st, "")
	return true
}

// Remove deletes a container, killing it if it still runs. An unknown id
// wraps errdefs.ErrNotFound (the CRI adapter treats that as done).
func (m *Manager) Remove(ctx context.Context, id string) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(c.ID)
	defer unlock()
	if err := m.destroy(ctx, c); err != nil {
		return err
	}
	m.publish(events.Deleted, c)
	return nil
}

// SignalName is the canonical name of a signal written as ParseSignal
// reads it ("SIGTERM"; real-time signals as "SIGRTMIN+3" or "SIGRTMAX-1",
// as glibc counts them from 34), or "" for "" or one it does not know.
func SignalName(s string) string {
	sig := int(ParseSignal(s, 0))
	switch {
	case sig == 0:
		return ""
	case sig == sigRTMin:
		return "SIGRTMIN"
	case sig == sigRTMax:
		return "SIGRTMAX"
	case sig > sigRTMin && sig <= sigRTMin+15:
		return "SIGRTMIN+" + strconv.Itoa(sig-sigRTMin)
	case sig > sigRTMin+15 && sig < sigRTMax:
		return "SIGRTMAX-" + strconv.Itoa(sigRTMax-sig)
	}
	return unix.SignalName(syscall.Signal(sig))
}

// The real-time signals' range as glibc (and docker) number them.
const sigRTMin, sigRTMax = 34, 64

// ParseSignal reads a signal as docker writes it: "SIGTERM", "TERM",
// "term", "15", an alias ("SIGIOT"), or a real-time signal ("SIGRTMIN+3",
// "RTMAX-1"); anything else, or "", gives dflt.
func ParseSignal(s string, dflt syscall.Signal) syscall.Signal {
	if n, err := strconv.Atoi(s); err == nil {
		if n > 0 && n < 65 {
			return syscall.Signal(n)
		}
		return dflt
	}
	if sig, err := signal.ParseSignal(s); err == nil {
		return sig
	}
	return dflt
}
