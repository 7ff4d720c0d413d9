package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/shim"
)

// AttachOpts are the client's streams of an Attach; nil ones are not
// attached. Resize delivers terminal sizes (may be nil).
type AttachOpts struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan TermSize
	// Attached, if set, is called once the streams are connected, before
	// any output: a client that starts the container after attaching
	// (docker run) misses nothing.
	Attached func()
}

// Attach connects the client's streams to a created or running container's stdio
// through its shim until the container exits or ctx ends (the client
// detached); the container keeps running then. Several clients may be
// attached at once. Stdin is attached only if the container was created
// with one; the shim closes it when the client's stdin ends, if the
// container says StdinOnce. Resizes apply to a TTY container's terminal.
func (m *Manager) Attach(ctx context.Context, id string, o AttachOpts) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if st := StateOf(c); st != Running && st != Created {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	cfg, err := readShimConfig(c.Bundle)
	if err != nil {
		return fmt.Errorf("attach to %s: %w", c.ID, err)
	}
	if !cfg.Stdin {
		o.Stdin = nil
	}
	socket, err := m.shimSocket(c.ID)
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var resize func(TermSize)
	if cfg.Terminal {
		resize = func(sz TermSize) {
			if err := shim.Resize(actx, socket, sz.Width, sz.Height); err != nil {
				m.log.Debug("resizing the terminal", "container", c.ID[:12], "error", err)
			}
		}
	}
	go forwardResizes(o.Resize, actx.Done(), resize)
	_, err = shim.Attach(actx, socket, shim.AttachOpts{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Attached: o.Attached})
	if err != nil && ctx.Err() != nil {
		return nil // the client detached
	}
	if errors.Is(err, errdefs.ErrUnavailable) {
		// The shim went away: the container is gone with it.
		return nil
	}
	return err
}

// readShimConfig reads the config the container's shim runs with: it
// says whether the container has a stdin and a terminal.
func readShimConfig(bundle string) (shim.Config, error) {
	var cfg shim.Config
	b, err := os.ReadFile(shim.ConfigPath(shim.Config{Bundle: bundle}))
	if err != nil {
		return cfg, err
	}
	return cfg, json.Unmarshal(b, &cfg)
}

// Resize sets the terminal size of a TTY container (docker's POST
// /containers/{id}/resize). A container without a terminal, or not
// running, wraps errdefs.ErrFailedPrecondition.
func (m *Manager) Resize(ctx context.Context, id string, sz TermSize) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if st := StateOf(c); st != Running && st != Created {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if !c.Process.TTY {
		return fmt.Errorf("container %s has no terminal: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	socket, err := m.shimSocket(c.ID)
	if err != nil {
		return err
	}
	return shim.Resize(ctx, socket, sz.Width, sz.Height)
}
