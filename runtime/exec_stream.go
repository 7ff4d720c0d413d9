package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/runtime/ocirt/cli"
)

// outputDrain is how long output still buffered when an exec'd process
// exits may take to reach the client. Only a background child that keeps
// the pipe open, or a stuck client, makes it matter.
const outputDrain = 2 * time.Second

// TermSize is a terminal size in character cells.
type TermSize struct {
	Width, Height uint16
}

// ExecOpts describe a streaming Exec: the command, its streams and its
// terminal. A nil Stdin gives the process an empty stdin; nil Stdout or
// Stderr discard that output.
type ExecOpts struct {
	Cmd            []string
	TTY            bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize delivers terminal sizes while the command runs (TTY only;
	// sizes sent without a TTY are dropped). May be nil.
	Resize <-chan TermSize
	// Env (KEY=value) is added to the container's environment, replacing
	// a variable of the same name.
	Env []string
	// User runs the command as another user than the container's: a
	// name or uid, optionally with ":group" or ":gid", resolved in the
	// container's /etc/passwd and /etc/group ("" keeps the container's).
	User string
	// WorkingDir is the command's working directory ("" keeps the
	// container's).
	WorkingDir string
	// Privileged gives the command every capability.
	Privileged bool
	// Started, when set, is called with the command's pid (as the host
	// sees it) once the runtime has started it; not called if it never
	// starts.
	Started func(pid int)
}

// ErrExecNotStarted is wrapped by Exec's error when the OCI runtime could
// not start the command (no such executable, working directory...): the
// runtime has written its reason to the command's stderr (or terminal)
// already.
var ErrExecNotStarted = errors.New("the runtime could not start the command")

// Exec runs a command in a running container with its streams attached
// and returns its exit code once it exits. When ctx ends first (the
// client went away), the command is killed.
//
// Without a TTY the process gets pipes. With one, runc is run attached to
// a pty of berthd's (the slave is its stdio and controlling terminal):
// runc then makes the process's own pty, copies between the two and
// follows resizes of ours (SIGWINCH). runc accepts --console-socket only
// with --detach, and a detached process is not runc's child any more, so
// its exit code would be lost; berthd is not a subreaper.
func (m *Manager) Exec(ctx context.Context, id string, o ExecOpts) (int, error) {
	if len(o.Cmd) == 0 {
		return -1, fmt.Errorf("exec needs a command: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(ctx, id)
	if err != nil {
		return -1, err
	}
	if StateOf(c) != Running {
		return -1, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	rt, err := m.ociRuntime(c.RuntimeHandler)
	if err != nil {
		return -1, err
	}
	proc, err := m.execProcess(c, o)
	if err != nil {
		return -1, err
	}
	base := filepath.Join(c.Bundle, "exec-"+idgen.Hex(6))
	pidFile, procFile := base+".pid", base+".json"
	defer os.Remove(pidFile)
	if err := os.WriteFile(procFile, proc, 0o600); err != nil {
		return -1, err
	}
	defer os.Remove(procFile)
	args := []string{"exec", "--process", procFile, "--pid-file", pidFile}
	if o.TTY {
		args = append(args, "--tty")
	}
	// runc exec is not tied to ctx: killing it would leave the command
	// running in the container. The command itself is killed instead.
	call, err := rt.CLI().Command(context.WithoutCancel(ctx), append(args, c.ID)...)
	if err != nil {
		return -1, err
	}
	s := execStreams{stop: make(chan struct{})}
	if o.TTY {
		err = s.terminal(call, o)
	} else {
		err = s.pipes(call, o)
	}
	if err != nil {
		s.closeAll()
		return -1, err
	}
	// Without a TTY, sizes are drained and dropped so that the sender
	// never blocks.
	var resize func(TermSize)
	if s.pty != nil {
		resize = func(sz TermSize) { setWinsize(s.pty, sz) }
	}
	go forwardResizes(o.Resize, s.stop, resize)
	if err := call.Start(); err != nil {
		s.closeAll()
		return -1, fmt.Errorf("exec in %s: %w", c.ID, err)
	}
	s.started()

	done := make(chan error, 1)
	go func() { done <- call.Wait() }()
	if o.Started != nil {
		go reportPid(pidFile, s.stop, o.Started)
	}
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		killExec(pidFile)
		select {
		case werr = <-done:
		case <-time.After(10 * time.Second):
			// No pid to kill (runc never started the process): stop runc.
			call.Cmd.Process.Kill()
			werr = <-done
		}
	}
	s.finish()
	var ce *cli.Error
	if errors.As(werr, &ce) && ce.Msg == "" && ce.ExitCode >= 0 {
		// The runtime logged no error of its own: the exit code is the process's.
		return ce.ExitCode, ctx.Err()
	}
	if werr != nil {
		return -1, fmt.Errorf("exec in %s: %w: %w", c.ID, werr, ErrExecNotStarted)
	}
	return 0, ctx.Err()
}

// execStreams are the files between berthd and an exec'd runc and the
// goroutines copying through them.
type execStreams struct {
	child    []*os.File // runc's ends: closed in berthd once it started
	stdinW   *os.File   // berthd's end of the stdin pipe (no TTY)
	outputs  []*os.File // berthd's ends of the output pipes or pty master
	pty      *os.File   // the pty master (TTY only)
	copiers  sync.WaitGroup
	stop     chan struct{} // ends the resize loop
	stopOnce sync.Once
	once     sync.Once // closes stdinW
}

// pipes gives runc a pipe for each stream asked for.
func (s *execStreams) pipes(call *cli.Call, o ExecOpts) error {
	if o.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		s.child = append(s.child, r)
		s.stdinW = w
		call.Cmd.Stdin = r
		go func() {
			io.Copy(w, o.Stdin)
			s.closeStdin() // EOF in the process
		}()
	}
	for _, out := range []struct {
		dst io.Writer
		set func(*os.File)
	}{
		{o.Stdout, func(f *os.File) { call.Cmd.Stdout = f }},
		{o.Stderr, func(f *os.File) { call.Cmd.Stderr = f }},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		s.child = append(s.child, w)
		s.outputs = append(s.outputs, r)
		out.set(w)
		dst := out.dst
		if dst == nil {
			dst = io.Discard
		}
		s.copiers.Add(1)
		go func() {
			defer s.copiers.Done()
			io.Copy(dst, r)
		}()
	}
	return nil
}

// terminal gives runc a pty of berthd's as stdio and controlling terminal.
func (s *execStreams) terminal(call *cli.Call, o ExecOpts) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	s.pty = master
	s.child = append(s.child, slave)
	s.outputs = append(s.outputs, master)
	call.Cmd.Stdin, call.Cmd.Stdout, call.Cmd.Stderr = slave, slave, slave
	call.Cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if o.Stdin != nil {
		// The end of the client's stdin does not end a terminal.
		go io.Copy(master, o.Stdin)
	}
	dst := o.Stdout
	if dst == nil {
		dst = io.Discard
	}
	s.copiers.Add(1)
	go func() {
		defer s.copiers.Done()
		// EIO once every slave descriptor is closed, i.e. runc exited.
		io.Copy(dst, master)
	}()
	return nil
}

// forwardResizes passes every size from resize to apply (nil: drops them)
// until resize closes or done does.
func forwardResizes(resize <-chan TermSize, done <-chan struct{}, apply func(TermSize)) {
	for {
		select {
		case sz, ok := <-resize:
			if !ok {
				return
			}
			if apply != nil {
				apply(sz)
			}
		case <-done:
			return
		}
	}
}

func (s *execStreams) closeStdin() {
	if s.stdinW != nil {
		s.once.Do(func() { s.stdinW.Close() })
	}
}

// started closes runc's ends in berthd, so that an output reaches EOF
// when runc and the process are done with it.
func (s *execStreams) started() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

// finish lets buffered output drain after runc exited, then closes
// everything. A background child of the command that keeps an output
// open does not hold the call: reads stop after outputDrain.
func (s *execStreams) finish() {
	s.stopOnce.Do(func() { close(s.stop) })
	drained := make(chan struct{})
	go func() { s.copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputDrain):
		for _, f := range s.outputs {
			f.SetReadDeadline(time.Now())
		}
		<-drained
	}
	s.closeAll()
}

func (s *execStreams) closeAll() {
	s.stopOnce.Do(func() { close(s.stop) })
	for _, f := range s.child {
		f.Close()
	}
	s.closeStdin()
	for _, f := range s.outputs {
		f.Close()
	}
}

// openPTY opens a new pty pair; the master is non-blocking so that read
// deadlines work on it.
func openPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a pty: %w", err)
	}
	master = os.NewFile(uintptr(fd), "pty-master")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	sfd := int(r)
	if errno != 0 {
		err := error(errno)
		n, err2 := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
		if err2 != nil {
			master.Close()
			return nil, nil, fmt.Errorf("opening the pty's slave: %w", err)
		}
		sfd, err = unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			master.Close()
			return nil, nil, fmt.Errorf("opening the pty's slave: %w", err)
		}
	}
	slave = os.NewFile(uintptr(sfd), "pty-slave")
	// A terminal of 0x0 confuses programs; kubectl sends the real size
	// right after it connects.
	setWinsize(master, TermSize{Width: 80, Height: 24})
	return master, slave, nil
}

func setWinsize(f *os.File, sz TermSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	})
	if err == nil {
		err = ioErr
	}
	return err
}
