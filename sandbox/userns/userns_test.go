package userns

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/testutil"
)

func TestValidate(t *testing.T) {
	m := func(cid, hid, n uint32) specs.LinuxIDMapping {
		return specs.LinuxIDMapping{ContainerID: cid, HostID: hid, Size: n}
	}
	ok := []specs.LinuxIDMapping{m(0, 100000, 65536)}
	if err := Validate(ok, ok); err != nil {
		t.Errorf("valid mapping: %v", err)
	}
	if err := Validate(ok, []specs.LinuxIDMapping{m(0, math.MaxUint32-65536, 65536)}); err != nil {
		t.Errorf("mapping up to the last ID: %v", err)
	}
	for name, tc := range map[string][2][]specs.LinuxIDMapping{
		"no uid mapping":   {nil, ok},
		"no gid mapping":   {ok, nil},
		"two uid mappings": {{m(0, 1000, 10), m(10, 2000, 10)}, ok},
		"container ID 1":   {{m(1, 1000, 100)}, ok},
		"gid from 1":       {ok, {m(1, 1000, 100)}},
		"empty":            {{m(0, 1000, 0)}, ok},
		"past the last ID": {{m(0, math.MaxUint32-10, 65536)}, ok},
		"gid past last ID": {ok, {m(0, math.MaxUint32, 1)}},
	} {
		if err := Validate(tc[0], tc[1]); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestSearchable(t *testing.T) {
	dir := t.TempDir() // 0700
	if err := searchable(dir); err == nil {
		t.Errorf("a 0700 directory passed")
	}
	if err := searchable("/"); err != nil {
		t.Errorf("/: %v", err)
	}
}

// TestNewAndRemove: the pinned network namespace is owned by the pinned
// user namespace, whose mapping is the one asked for; Remove unpins both.
func TestNewAndRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	userDir, netDir := filepath.Join(dir, "user"), filepath.Join(dir, "net")
	t.Cleanup(func() {
		unix.Unmount(userDir, unix.MNT_DETACH)
		unix.Unmount(netDir, unix.MNT_DETACH)
	})
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 5 << 20, Size: 65536}}
	pod, err := New([]string{"sleep", "60"}, maps, maps, userDir, netDir, "p1")
	if err != nil {
		t.Fatal(err)
	}
	user, err := os.Open(pod.User)
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	net, err := os.Open(pod.Net)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	owner, err := unix.IoctlRetInt(int(net.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(owner)
	var a, b unix.Stat_t
	unix.Fstat(owner, &a)
	unix.Fstat(int(user.Fd()), &b)
	if a.Ino != b.Ino {
		t.Error("the network namespace is not owned by the pod's user namespace")
	}
	// A process that joins the namespace sees the mapping.
	cmd := exec.Command("nsenter", "--user="+pod.User, "cat", "/proc/self/uid_map")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	if f := strings.Fields(string(out)); !slices.Equal(f, []string{"0", "5242880", "65536"}) {
		t.Errorf("uid_map in the namespace = %q", out)
	}
	if _, err := New([]string{"sleep", "60"}, maps, maps, userDir, netDir, "p1"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second New with the same name: %v", err)
	}
	if err := Remove(pod); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pod.User, pod.Net} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if err := Remove(pod); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestProbe(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o711)
	os.Chmod(filepath.Dir(dir), 0o711)
	if err := Probe([]string{"sleep", "60"}, dir); err != nil {
		t.Errorf("Probe(%s) = %v", dir, err)
	}
	if err := Probe([]string{"sleep", "60"}, filepath.Join(dir, "missing")); err == nil {
		t.Error("Probe of a missing path passed")
	}
}
