package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/runtime/rootfs"
)

// Everything the pod sections create lives under one fixed directory, on
// one of a few fixed bridges and under one cgroup parent, so that a run
// that died half way is swept up by the next one (sweep) as well as by its
// own deferred cleanups.
const (
	berthBridge  = "bbench0"
	berthSubnet  = "10.212.0.0/24"
	ctrdBridge   = "bbenchc0"
	ctrdSubnet   = "10.213.0.0/24"
	cgroupParent = "/berth-bench"
)

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers f to run, in reverse order of registration, when the
// bench ends: normally, through fail, or on SIGINT/SIGTERM.
func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

// runCleanups runs (once) every function atExit registered.
func runCleanups() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// cleanupOnSignal makes an interrupted bench clean up before it exits.
func cleanupOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-ch
		fmt.Fprintf(os.Stderr, "bench: %v: cleaning up\n", s)
		runCleanups()
		os.Exit(130)
	}()
}

// sweep removes, best effort, everything a pod section may have left under
// base: containers of any runc root below it (runc delete -f kills their
// processes), processes whose command line names base (berthd, shims,
// containerd and its shims), mounts below base (pinned netns, /dev/shm
// tmpfs, overlay rootfs), the bench's bridges and cgroups, and base itself.
func sweep(base string) {
	if _, err := os.Stat(base); err == nil {
		deleteRuncContainers(base)
		killProcsNaming(base)
		deleteRuncContainers(base) // anything a dying daemon created meanwhile
		rootfs.UnmountAll(base)
		os.RemoveAll(base)
	}
	for _, br := range []string{berthBridge, ctrdBridge} {
		if _, err := os.Stat("/sys/class/net/" + br); err == nil {
			exec.Command("ip", "link", "del", br).Run()
		}
	}
	removeCgroups(cgroupParent)
}

// deleteRuncContainers runs `runc delete -f` for every container whose
// state.json lies in a runc root below base.
func deleteRuncContainers(base string) {
	mounts, _ := rootfs.MountsUnder(base)
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && slices.Contains(mounts, p) {
			return filepath.SkipDir // never walk into a container's rootfs
		}
		if !d.IsDir() && d.Name() == "state.json" {
			dir := filepath.Dir(p)
			root, id := filepath.Dir(dir), filepath.Base(dir)
			exec.Command("runc", "--root", root, "delete", "-f", id).Run()
		}
		return nil
	})
}

// killProcsNaming SIGKILLs every process (but this one) whose command line
// contains base, and waits a little for them to go.
func killProcsNaming(base string) {
	var pids []int
	for _, pid := range allPids() {
		if pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(b, []byte(base)) {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func isZombie(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state == "Z"
}

// removeCgroups removes the (empty) cgroup directories named parent in
// every hierarchy, children first.
func removeCgroups(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	if d := "/sys/fs/cgroup" + parent; isDir(d) {
		dirs = append(dirs, d) // cgroup v2 only
	}
	for _, d := range dirs {
		var all []string
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			syscall.Rmdir(all[i])
		}
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
