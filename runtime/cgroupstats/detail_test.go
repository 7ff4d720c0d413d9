package cgroupstats

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/google/go-cmp/cmp"
)

func TestIOV1(t *testing.T) {
	bytes := []*v1stats.BlkIOEntry{
		{Op: "Read", Device: "/dev/vdb", Major: 254, Minor: 16, Value: 10},
		{Op: "Read", Device: "/dev/vda", Major: 254, Minor: 0, Value: 4096},
		{Op: "Write", Device: "/dev/vda", Major: 254, Minor: 0, Value: 8192},
		{Op: "Total", Device: "/dev/vda", Major: 254, Minor: 0, Value: 12288},
	}
	ops := []*v1stats.BlkIOEntry{
		{Op: "Read", Device: "/dev/vda", Major: 254, Minor: 0, Value: 1},
		{Op: "Write", Major: 8, Minor: 0, Value: 3},
	}
	want := []IODevice{
		{Device: "8:0", Major: 8, Minor: 0, Bytes: map[string]uint64{}, Ops: map[string]uint64{"Write": 3}},
		{Device: "/dev/vda", Major: 254, Minor: 0, Bytes: map[string]uint64{"Read": 4096, "Write": 8192, "Total": 12288}, Ops: map[string]uint64{"Read": 1}},
		{Device: "/dev/vdb", Major: 254, Minor: 16, Bytes: map[string]uint64{"Read": 10}, Ops: map[string]uint64{}},
	}
	if diff := cmp.Diff(want, ioV1(bytes, ops)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := ioV1(nil, nil); len(got) != 0 {
		t.Errorf("no blkio entries give devices: %v", got)
	}
}

func TestIOV2(t *testing.T) {
	got := ioV2([]*v2stats.IOEntry{{Major: 254, Minor: 0, Rbytes: 1, Wbytes: 2, Rios: 3, Wios: 4}},
		map[[2]uint64]string{{254, 0}: "/dev/vda"})
	want := []IODevice{{Device: "/dev/vda", Major: 254, Bytes: map[string]uint64{"Read": 1, "Write": 2}, Ops: map[string]uint64{"Read": 3, "Write": 4}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSharesFromWeight(t *testing.T) {
	// runc maps shares s to weight 1 + ((s-2)*9999)/262142.
	for weight, shares := range map[uint64]uint64{1: 2, 10000: 262144, 0: 0, 39: 998} {
		if got := SharesFromWeight(weight); got != shares {
			t.Errorf("SharesFromWeight(%d) = %d, want %d", weight, got, shares)
		}
	}
}

func TestCountFDs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pid := uint64(os.Getpid())
	fds, sockets := CountFDs("/proc", []uint64{pid, 1 << 30})
	ents, _ := os.ReadDir("/proc/self/fd")
	// ReadDir's own descriptor comes and goes.
	if fds == 0 || fds > uint64(len(ents))+1 || sockets == 0 {
		t.Errorf("CountFDs = %d fds, %d sockets; /proc/self/fd has %d", fds, sockets, len(ents))
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"max": "max\n", "neg": "-1\n", "n": "100000\n",
		"memory.stat": "cache 5\ntotal_swap 7\nkernel 9\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]uint64{"max": 1<<64 - 1, "neg": 0, "n": 100000} {
		if got, err := readUintFile(filepath.Join(dir, name)); err != nil || got != want {
			t.Errorf("readUintFile(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	kv, err := readKeys(filepath.Join(dir, "memory.stat"), "total_swap", "kernel", "absent")
	if diff := cmp.Diff(map[string]uint64{"total_swap": 7, "kernel": 9}, kv); err != nil || diff != "" {
		t.Errorf("readKeys: %v (-want +got):\n%s", err, diff)
	}
	if limitOrZero(0x7FFFFFFFFFFFF000) != 0 || limitOrZero(1<<64-1) != 0 || limitOrZero(4096) != 4096 {
		t.Error("limitOrZero")
	}
}

// TestReadDetailedOwnCgroup reads the test process's memory cgroup with
// the detail: the memory figures and the process list (which holds this
// process) are there.
func TestReadDetailedOwnCgroup(t *testing.T) {
	controller := "memory"
	if cgroups.Mode() == cgroups.Unified {
		controller = ""
	}
	s, err := ReadDetailed(ownCgroup(t, controller))
	if err != nil {
		t.Fatal(err)
	}
	d := s.Detail
	if d == nil || !d.Memory.Has || !d.Tasks.HasProcs || d.Tasks.Processes == 0 || d.Tasks.FileDescriptors == 0 || d.Time.IsZero() {
		t.Errorf("detail of our own cgroup: %+v", d)
	}
	if s, err := Read(ownCgroup(t, controller)); err != nil || s.Detail != nil {
		t.Errorf("Read gives a detail: %+v, %v", s.Detail, err)
	}
}
