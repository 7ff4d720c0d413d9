// Package pause is the pod infra process (`berth-shim pause`): PID 1 of the
// pod's pid namespace when it has one. It sleeps, reaps the zombies that
// are reparented to it, and exits 0 on SIGTERM or SIGINT. It touches no
// file, so it runs in a rootfs that holds nothing but the binary.
package pause

import (
	"os"
	"os/signal"
	"syscall"
)

// Run blocks until SIGTERM or SIGINT and returns the exit code (0).
func Run() int {
	// As PID 1 of a namespace, only signals with a handler are delivered:
	// Notify installs one.
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range ch {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		return 0
	}
	return 0
}

func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
