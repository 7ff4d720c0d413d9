package streaming

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-runtime/berth/runtime"
)

// Containers is what the server needs of the container manager
// (*runtime.Manager).
type Containers interface {
	Exec(ctx context.Context, id string, o runtime.ExecOpts) (exitCode int, err error)
	Attach(ctx context.Context, id string, o runtime.AttachOpts) error
}

// Sandboxes is what the server needs of the sandbox manager
// (*sandbox.Manager).
type Sandboxes interface {
	PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error
}

// bridge implements cri-streaming's Runtime over the managers.
type bridge struct {
	containers Containers
	sandboxes  Sandboxes
	log        *slog.Logger
}

// Exec runs the command. A non-zero exit code is returned as a
// utilexec.ExitError, unwrapped: cri-streaming type-asserts it to report
// the code to the client (v4 protocols) instead of an internal error.
func (b *bridge) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	code, err := b.containers.Exec(ctx, id, runtime.ExecOpts{
		Cmd: cmd, TTY: tty, Stdin: in, Stdout: writer(out), Stderr: writer(errw), Resize: sizes(ctx, resize),
	})
	if err != nil {
		if ctx.Err() != nil {
			b.log.Debug("exec ended: the client went away", "container", short(id))
		}
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// Attach attaches the streams to the container until it exits or the
// client detaches.
func (b *bridge) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return b.containers.Attach(ctx, id, runtime.AttachOpts{
		Stdin: in, Stdout: writer(out), Stderr: writer(errw), Resize: sizes(ctx, resize),
	})
}

// PortForward forwards one stream to a port of the sandbox.
func (b *bridge) PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error {
	return b.sandboxes.PortForward(ctx, id, port, stream)
}

// writer keeps a stream that was not asked for nil (not a typed nil).
func writer(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return w
}

// sizes converts terminal sizes until ctx ends or in closes.
func sizes(ctx context.Context, in <-chan remotecommand.TerminalSize) <-chan runtime.TermSize {
	if in == nil {
		return nil
	}
	out := make(chan runtime.TermSize)
	go func() {
		defer close(out)
		for {
			select {
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runtime.TermSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
