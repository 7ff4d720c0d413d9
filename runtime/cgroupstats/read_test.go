package cgroupstats

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"
)

// ownCgroup is this process's cgroup in the hierarchy whose
// /proc/self/cgroup line has the given controller list ("" for v2).
func ownCgroup(t *testing.T, controller string) string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2]
			}
		}
	}
	t.Skipf("no %q line in /proc/self/cgroup", controller)
	return ""
}

// TestReadOwnCgroup reads the test process's own cgroup through the
// host's mode (v1 on this hybrid host) and, where there is a cgroup2
// mount, through the v2 reader too.
func TestReadOwnCgroup(t *testing.T) {
	switch cgroups.Mode() {
	case cgroups.Legacy, cgroups.Hybrid:
		s, err := Read(ownCgroup(t, "memory"))
		if err != nil {
			t.Fatal(err)
		}
		if s.Memory.Usage == 0 || s.Time.IsZero() {
			t.Errorf("v1 sample of our own cgroup: %+v", s)
		}
	case cgroups.Unified:
		s, err := Read(ownCgroup(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		if s.CPUNanos == 0 {
			t.Errorf("v2 sample of our own cgroup: %+v", s)
		}
	}
	if cgroups.Mode() == cgroups.Hybrid {
		// The hybrid cgroup2 mount has no controllers, but cpu.stat is
		// in every cgroup2 directory.
		s, err := readV2At("/sys/fs/cgroup/unified", ownCgroup(t, ""), false)
		if err != nil {
			t.Fatal(err)
		}
		if s.CPUNanos == 0 {
			t.Errorf("v2 reader on the hybrid mount: %+v", s)
		}
		// With the detail: CPU by mode and the process list are there;
		// memory, pids and throttling, without their controllers, are
		// not.
		s, err = readV2At("/sys/fs/cgroup/unified", ownCgroup(t, ""), true)
		if err != nil {
			t.Fatal(err)
		}
		if d := s.Detail; d == nil || !d.CPU.HasUsage || !d.Tasks.HasProcs || d.Tasks.Processes == 0 ||
			d.Memory.Has || d.Tasks.HasPids || d.CPU.HasThrottling {
			t.Errorf("v2 detail on the hybrid mount: %+v", s.Detail)
		}
	}
	if _, err := Read("/berth-no-such-cgroup"); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("Read of a missing cgroup = %v, want ErrNoCgroup", err)
	}
}
