// Package monitor is berth-shim's own loop: the per-container monitor, in
// the spirit of CRI-O's conmon. One shim per container:
//
//  1. Main (stage 1, started by berthd) re-executes the shim in a new
//     session and exits at once, so berthd reaps its child immediately and
//     the monitor (stage 2) is reparented to init: a crash of berthd never
//     leaves a zombie shim, and berthd never waits for it.
//  2. Run (stage 2) becomes a child subreaper, opens the CRI log, listens on
//     the control socket, creates the container's stdio (pipes, or a pty
//     received over --console-socket), runs `runtime create`, and reports
//     the init pid (or the runtime's error, verbatim) on the sync pipe.
//  3. It copies stdout/stderr into the log for as long as the container
//     lives (it is the only reader, so the container never blocks on output
//     whatever berthd does), reaps the init process (which the subreaper bit
//     makes its child once `runtime create` exits) and any orphans.
//  4. On the init's exit it drains the pipes to EOF — at most DrainTimeout,
//     as a daemon forked by the container may hold them open forever —
//     writes the exit file atomically, answers waiters and exits.
//
// The shim never deletes the container from the runtime: berthd does that
// when it removes the container.
//
// Resident memory is per container, so the package keeps the shim small:
// no encoding/json, reflect, fmt, net or os/exec (see internal/wire,
// sock.go, runtime.go), one P, few goroutines and small buffers.
package monitor

import (
	"os"
	"strconv"
	"syscall"

	"github.com/berth-runtime/berth/runtime/shim/internal/wire"
	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

// stageEnv marks the re-executed, detached monitor process.
const stageEnv = "_BERTH_SHIM_STAGE"

// SyncFd is the fd of the start-up sync pipe in the shim.
const SyncFd = 3

// Main is the entry point of `berth-shim CONFIG`. It returns the exit code.
func Main(configPath string) int {
	sync := os.NewFile(SyncFd, "sync")
	if os.Getenv(stageEnv) != "2" {
		return detach(configPath, sync)
	}
	os.Unsetenv(stageEnv)
	b, err := os.ReadFile(configPath)
	if err != nil {
		report(sync, shimapi.SyncMsg{Error: "berth-shim: " + err.Error()})
		return 1
	}
	cfg, err := parseConfig(b)
	if err != nil {
		report(sync, shimapi.SyncMsg{Error: "berth-shim: parsing " + configPath + ": " + err.Error()})
		return 1
	}
	return Run(cfg, sync)
}

// detach starts stage 2 in its own session and reports its pid.
func detach(configPath string, sync *os.File) int {
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr, sync}
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = ^uintptr(0)
		if f != nil {
			fds[i] = f.Fd()
		}
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{os.Args[0], configPath}, &syscall.ProcAttr{
		Env:   append(os.Environ(), stageEnv+"=2"),
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		report(sync, shimapi.SyncMsg{Error: "berth-shim: re-executing: fork/exec /proc/self/exe: " + err.Error()})
		return 1
	}
	report(sync, shimapi.SyncMsg{ShimPid: pid})
	return 0
}

// report writes one sync message as a JSON line, as json.Marshal would.
func report(sync *os.File, m shimapi.SyncMsg) {
	if sync == nil {
		return
	}
	b := make([]byte, 0, 64+len(m.Error))
	b = append(b, '{')
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	if m.ShimPid != 0 {
		sep()
		b = append(b, `"shimPid":`...)
		b = strconv.AppendInt(b, int64(m.ShimPid), 10)
	}
	if m.Pid != 0 {
		sep()
		b = append(b, `"pid":`...)
		b = strconv.AppendInt(b, int64(m.Pid), 10)
	}
	if m.Error != "" {
		sep()
		b = append(b, `"error":`...)
		b = wire.AppendString(b, m.Error)
	}
	b = append(b, '}', '\n')
	sync.Write(b)
}

// parseConfig decodes the shim's config as json.Unmarshal would.
func parseConfig(b []byte) (shimapi.Config, error) {
	var c shimapi.Config
	err := wire.ParseObject(b, func(k string, v wire.Value) error {
		var s *string
		var fl *bool
		switch {
		case wire.KeyIs(k, "id"):
			s = &c.ID
		case wire.KeyIs(k, "bundle"):
			s = &c.Bundle
		case wire.KeyIs(k, "runtime"):
			s = &c.Runtime
		case wire.KeyIs(k, "runtimeRoot"):
			s = &c.RuntimeRoot
		case wire.KeyIs(k, "logPath"):
			s = &c.LogPath
		case wire.KeyIs(k, "exitFile"):
			s = &c.ExitFile
		case wire.KeyIs(k, "socket"):
			s = &c.Socket
		case wire.KeyIs(k, "pidFile"):
			s = &c.PidFile
		case wire.KeyIs(k, "systemdCgroup"):
			fl = &c.SystemdCgroup
		case wire.KeyIs(k, "terminal"):
			fl = &c.Terminal
		case wire.KeyIs(k, "stdin"):
			fl = &c.Stdin
		case wire.KeyIs(k, "stdinOnce"):
			fl = &c.StdinOnce
		case wire.KeyIs(k, "maxLineSize"):
			n, ok, err := v.Int(strconv.IntSize)
			if ok {
				c.MaxLineSize = int(n)
			}
			return err
		default:
			return nil
		}
		if s != nil {
			x, ok, err := v.Str()
			if ok {
				*s = x
			}
			return err
		}
		x, ok, err := v.Bool()
		if ok {
			*fl = x
		}
		return err
	})
	return c, err
}
