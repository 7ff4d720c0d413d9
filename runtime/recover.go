package runtime

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/store"
)

// Recover runs at start-up, after the sandboxes recovered. Its
// assumptions: a record with Pid 0 is a create that a crash interrupted
// (undo it); a running container whose shim lives is adopted (watched
// again); one whose shim is gone has exited, with the status in the exit
// file the shim wrote, or, if the shim was killed before it could, is
// killed and reported as such.
func (m *Manager) Recover(ctx context.Context) error {
	cs, err := m.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		log := m.log.With("container", c.ID[:12], "name", c.Name)
		switch StateOf(c) {
		case Unknown:
			log.Info("removing a container whose creation was interrupted")
			errs = append(errs, m.destroy(ctx, c))
			continue
		case Created, Running:
			st, exited, err := m.launcher.ExitStatus(ctx, c.RuntimeHandler, c.ID, c.Bundle)
			switch {
			case err != nil:
				errs = append(errs, err)
			case exited:
				log.Info("container exited while berthd was away", "exitCode", st.ExitCode)
				m.recordExit(c.ID, st, "")
			case StateOf(c) == Running:
				m.watch(c)
			default:
				// Created: a Start may have run just before the crash,
				// without its record. The runtime knows.
				if rs, err := m.launcher.State(ctx, c.RuntimeHandler, c.ID); err == nil && rs.Status == ocirt.StatusRunning {
					log.Info("container was started just before the crash; adopting it")
					if c, err = m.update(c.ID, func(c *store.Container) { c.StartedAt = processStart(rs.Pid) }); err != nil {
						errs = append(errs, err)
					} else {
						m.publish(events.Started, c)
						m.watch(c)
					}
				}
			}
		}
		errs = append(errs, m.names.Reserve(c.Key, c.ID))
	}
	return errors.Join(errs...)
}

// processStart is when process pid started (from /proc/<pid>/stat), or now.
func processStart(pid int) time.Time {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Now().UTC()
	}
	// Field 22 (starttime, in clock ticks since boot) follows the
	// parenthesised command name, which may contain spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 20 {
		return time.Now().UTC()
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	var info unix.Sysinfo_t
	if err != nil || unix.Sysinfo(&info) != nil {
		return time.Now().UTC()
	}
	const hz = 100 // USER_HZ on Linux
	boot := time.Now().Add(-time.Duration(info.Uptime) * time.Second)
	return boot.Add(time.Duration(ticks) * time.Second / hz).UTC()
}
