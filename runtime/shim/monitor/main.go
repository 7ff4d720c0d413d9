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
package monitor

import (
	"encoding/json"
	"os"
	"os/exec"
	"syscall"

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
	var cfg shimapi.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		report(sync, shimapi.SyncMsg{Error: "berth-shim: parsing " + configPath + ": " + err.Error()})
		return 1
	}
	return Run(cfg, sync)
}

// detach starts stage 2 in its own session and reports its pid.
func detach(configPath string, sync *os.File) int {
	cmd := exec.Command("/proc/self/exe", configPath)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), stageEnv+"=2")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{sync}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		report(sync, shimapi.SyncMsg{Error: "berth-shim: re-executing: " + err.Error()})
		return 1
	}
	report(sync, shimapi.SyncMsg{ShimPid: cmd.Process.Pid})
	cmd.Process.Release()
	return 0
}

func report(sync *os.File, m shimapi.SyncMsg) {
	if sync == nil {
		return
	}
	b, _ := json.Marshal(m)
	sync.Write(append(b, '\n'))
}
