package monitor

import (
	"errors"
	"os"
	"os/signal"
	"path"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/runtime/logs"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// DrainTimeout bounds how long output is still copied after the init
// process exited, for pipes held open by processes it left behind.
var DrainTimeout = 2 * time.Second

// copyBufSize is the read buffer of each output stream. Small on purpose:
// the shim's RSS is per container. (A pipe read returns what is buffered,
// so this bounds the size of a read, not of a line.)
const copyBufSize = 4 << 10

type monitor struct {
	cfg     shimapi.Config
	log     *logs.Writer
	ln      *listener
	initPid int
	oom     oomCounter

	outputs []*os.File // read ends: stdout, stderr (or the pty master)
	master  *os.File   // pty master when Terminal

	stdinMu sync.Mutex
	stdin   *os.File // write end of the container's stdin (or master), nil if none

	att attachers

	waitMu  sync.Mutex
	waiters map[*os.File]struct{} // connections blocked in a wait request

	exited   chan struct{} // closed once status is final and the exit file written
	status   shimapi.ExitStatus
	handlers sync.WaitGroup // wait/attach handlers that must finish before exit
}

// Run is stage 2: it monitors the container described by cfg and returns
// the shim's exit code. sync receives the start-up report.
func Run(cfg shimapi.Config, sync *os.File) int {
	// One P: the shim is I/O bound, and each P costs an mcache, a GC
	// worker and an idle thread.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(8 << 20)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	m := &monitor{cfg: cfg, exited: make(chan struct{}), waiters: map[*os.File]struct{}{}}
	pid, err := m.start()
	if err != nil {
		report(sync, shimapi.SyncMsg{Error: err.Error()})
		m.closeAll()
		return 1
	}
	report(sync, shimapi.SyncMsg{Pid: pid})
	sync.Close()
	m.run()
	return 0
}

func (m *monitor) closeAll() {
	if m.ln != nil {
		m.ln.Close() // removes the socket file (unlink on close)
	}
	for _, f := range m.outputs {
		f.Close()
	}
	if m.stdin != nil {
		m.stdin.Close()
	}
	if m.log != nil {
		m.log.Close()
	}
}

// start sets everything up and creates the container.
func (m *monitor) start() (int, error) {
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0, 0, 0, 0); e != 0 {
		return 0, errors.New("berth-shim: becoming a subreaper: " + e.Error())
	}
	var err error
	if m.log, err = logs.Open(m.cfg.LogPath, logs.WithMaxLineSize(m.cfg.MaxLineSize)); err != nil {
		return 0, errors.New("berth-shim: opening log: " + err.Error())
	}
	os.Remove(m.cfg.Socket)
	old := syscall.Umask(0o077)
	m.ln, err = listenUnix(m.cfg.Socket)
	syscall.Umask(old)
	if err != nil {
		return 0, errors.New("berth-shim: listening on control socket: " + err.Error())
	}
	if err := m.create(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(m.cfg.PidFile)
	if err != nil {
		return 0, errors.New("berth-shim: reading pid file: " + err.Error())
	}
	m.initPid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || m.initPid <= 0 {
		return 0, errors.New("berth-shim: bad pid file content " + strconv.Quote(string(b)))
	}
	m.oom = newOOMCounter(m.initPid)
	return m.initPid, nil
}

// create runs `runtime create` with the container's stdio.
func (m *monitor) create() error {
	args := []string{"create", "--bundle", m.cfg.Bundle, "--pid-file", m.cfg.PidFile}
	var console *consoleSocket
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	var stdio [3]*os.File
	if m.cfg.Terminal {
		var err error
		if console, err = listenConsole(); err != nil {
			return errors.New("berth-shim: console socket: " + err.Error())
		}
		defer console.Close()
		args = append(args, "--console-socket", console.path)
	} else {
		for i := 0; i < 3; i++ {
			if i == 0 && !m.cfg.Stdin {
				continue // /dev/null
			}
			r, w, err := os.Pipe()
			if err != nil {
				return errors.New("berth-shim: pipe: " + err.Error())
			}
			if i == 0 {
				stdio[0], m.stdin = r, w
				childEnds = append(childEnds, r)
			} else {
				stdio[i] = w
				m.outputs = append(m.outputs, r)
				childEnds = append(childEnds, w)
			}
		}
	}
	c, err := newRuntimeCall(m.cfg.Runtime, m.cfg.RuntimeRoot, m.cfg.SystemdCgroup, append(args, m.cfg.ID)...)
	if err != nil {
		return errors.New("berth-shim: " + err.Error())
	}
	if err := c.run(stdio[0], stdio[1], stdio[2]); err != nil {
		return err
	}
	if console != nil {
		master, err := console.receive(10 * time.Second)
		if err != nil {
			return errors.New("berth-shim: receiving the pty master: " + err.Error())
		}
		m.master = master
		m.outputs = []*os.File{master}
		m.stdin = master
	}
	return nil
}

// run is the monitor loop after a successful create.
func (m *monitor) run() {
	go m.serve()
	exitCh := make(chan syscall.WaitStatus, 1)
	go m.reap(exitCh)

	var copiers sync.WaitGroup
	streams := []string{logs.Stdout, logs.Stderr}
	ids := []byte{shimapi.StreamStdout, shimapi.StreamStderr}
	for i, r := range m.outputs {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			m.copy(r, m.log.Stream(streams[i]), ids[i])
		}()
	}

	// No debug.FreeOSMemory here: measured, the forced GC and scavenge
	// leave the idle shim ~300 KiB larger (GC and scavenger metadata) than
	// the little start-up garbage it would return.

	ws := <-exitCh
	st := shimapi.ExitStatus{ExitedAt: time.Now().UTC()}
	switch {
	case ws.Exited():
		st.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		st.Signal = int(ws.Signal())
		st.ExitCode = 128 + st.Signal
	default:
		st.ExitCode = 255 // unknown: init was not our child (see reap)
	}
	st.OOMKilled = st.Signal == int(syscall.SIGKILL) && m.oom.fired()

	// Drain: the streams end at EOF when the last holder of the write ends
	// is gone; a leftover daemon gets DrainTimeout.
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	drainTimer := time.NewTimer(DrainTimeout)
	select {
	case <-drained:
	case <-drainTimer.C:
		for _, r := range m.outputs {
			r.SetReadDeadline(time.Now())
		}
		<-drained
	}
	drainTimer.Stop()
	m.log.Close()

	b := shimapi.AppendExitStatus(nil, st)
	if err := atomicfile.WriteFile(m.cfg.ExitFile, b, 0o644); err != nil {
		os.Stderr.WriteString("berth-shim: " + m.cfg.ID + ": " + err.Error() + "\n")
	}
	m.status = st
	close(m.exited)
	// The socket goes first: whoever hears of the exit finds it gone.
	m.ln.Close()
	m.answerWaiters(st)
	m.att.closeAll(st)

	done := make(chan struct{})
	go func() { m.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	for _, r := range m.outputs {
		r.Close()
	}
}

// copy moves one output stream into the log and to attachers until EOF.
func (m *monitor) copy(r *os.File, sw *logs.StreamWriter, stream byte) {
	buf := make([]byte, copyBufSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sw.Write(buf[:n]) // a log write error drops data, never blocks
			m.att.broadcast(stream, buf[:n])
		}
		if err != nil {
			break // EOF, EIO (pty with no slave left) or the drain deadline
		}
	}
	sw.Close()
}

// reap waits for children: the init process (reported on exitCh) and
// whatever else is reparented to the subreaper.
func (m *monitor) reap(exitCh chan<- syscall.WaitStatus) {
	initDone := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			if initDone {
				return
			}
			// Init is not our child (the runtime did not leave it to the
			// subreaper); watch it without its status.
			if syscall.Kill(m.initPid, 0) == syscall.ESRCH {
				exitCh <- syscall.WaitStatus(0xffff)
				return
			}
			time.Sleep(200 * time.Millisecond)
			continue
		case err != nil:
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if pid == m.initPid && (ws.Exited() || ws.Signaled()) {
			initDone = true
			exitCh <- ws
		}
	}
}

// oomCounter reads the oom_kill counter of the container's memory cgroup
// (v1 memory.oom_control or v2 memory.events).
type oomCounter struct {
	path  string
	start int
}

func newOOMCounter(pid int) oomCounter {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return oomCounter{}
	}
	var v1, v2 string
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	var o oomCounter
	switch {
	case v1 != "":
		o.path = path.Join("/sys/fs/cgroup/memory", v1, "memory.oom_control")
	case v2 != "":
		o.path = path.Join("/sys/fs/cgroup", v2, "memory.events")
	}
	o.start = o.read()
	return o
}

func (o oomCounter) read() int {
	if o.path == "" {
		return 0
	}
	b, err := os.ReadFile(o.path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func (o oomCounter) fired() bool { return o.path != "" && o.read() > o.start }

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36
