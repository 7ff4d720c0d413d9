package runtime

import (
	"context"
	"errors"
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
			}
		}
		errs = append(errs, m.names.Reserve(c.Key, c.ID))
	}
	return errors.Join(errs...)
}
