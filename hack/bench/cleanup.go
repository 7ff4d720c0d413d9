package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
		unmountUnder(base)
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
	mounts := mountsUnder(base)
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

// unmountUnder lazily unmounts every mount point below base, deepest first.
func unmountUnder(base string) {
	mps := mountsUnder(base)
	slices.SortFunc(mps, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, mp := range mps {
		unix.Unmount(mp, unix.MNT_DETACH)
	}
}

// mountsUnder lists the mount points at or below base.
func mountsUnder(base string) []string {
	var mps []string
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			mp := unescapeMount(fields[4])
			if mp == base || strings.HasPrefix(mp, base+"/") {
				mps = append(mps, mp)
			}
		}
	}
	return mps
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
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
