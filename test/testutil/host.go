package testutil

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RootTestsEnv is the environment variable that opts in to tests needing
// root. The Makefile's test-root tier sets it to "1".
const RootTestsEnv = "BERTH_ROOT_TESTS"

// BusyboxEnv overrides the busybox binary used to build images. It must name
// a statically linked busybox; by default DefaultBusyboxPath is used.
const BusyboxEnv = "BERTH_TEST_BUSYBOX"

// DefaultBusyboxPath is where Debian's busybox-static package installs its
// binary.
const DefaultBusyboxPath = "/bin/busybox"

// RequiresRoot skips t unless the process runs as root and BERTH_ROOT_TESTS=1.
// Both are required: root alone does not opt in, so that `go test ./...` run
// as root in a container does not mount and unshare by surprise.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Getenv(RootTestsEnv) != "1" {
		t.Skipf("skipping: needs root; run with %s=1 as root (make test-root)", RootTestsEnv)
	}
	if os.Geteuid() != 0 {
		t.Skipf("skipping: needs root, running as uid %d (%s=1 is set)", os.Geteuid(), RootTestsEnv)
	}
}

// BusyboxPath returns the path of the host's statically linked busybox
// (DefaultBusyboxPath, or $BERTH_TEST_BUSYBOX) and skips t with an
// explanation if it is missing or dynamically linked: a dynamic busybox would
// not run inside an image that holds no libc.
func BusyboxPath(t testing.TB) string {
	t.Helper()
	p, err := busyboxPath()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	return p
}

func busyboxPath() (string, error) {
	p := DefaultBusyboxPath
	if env := os.Getenv(BusyboxEnv); env != "" {
		p = env
	}
	_, err := busyboxBytes(p)
	return p, err
}

type busyboxEntry struct {
	once sync.Once
	data []byte
	err  error
}

var busyboxCache sync.Map // path -> *busyboxEntry

// busyboxBytes reads and checks the busybox binary at p once per process.
func busyboxBytes(p string) ([]byte, error) {
	v, _ := busyboxCache.LoadOrStore(p, &busyboxEntry{})
	e := v.(*busyboxEntry)
	e.once.Do(func() { e.data, e.err = readStaticBusybox(p) })
	return e.data, e.err
}

func readStaticBusybox(p string) ([]byte, error) {
	const hint = "install Debian's busybox-static package or set " + BusyboxEnv
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("busybox not found at %s: %s", p, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("busybox at %s is not a regular file: %s", p, hint)
	}
	f, err := elf.Open(p)
	if err != nil {
		return nil, fmt.Errorf("busybox at %s is not an ELF binary (%v): %s", p, err, hint)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("busybox at %s is dynamically linked: %s", p, hint)
		}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	return data, nil
}

// RemoveCgroupTree removes the cgroup directories under the top-level
// cgroup of parent ("/kubepods/burstable" → /kubepods) on every hierarchy,
// deepest first: what a test's pod cgroup parents or a kubelet's QoS
// cgroups left once their containers are gone (runc removes only the
// containers' own). Busy ones stay.
func RemoveCgroupTree(parent string) {
	top := strings.Split(strings.Trim(parent, "/"), "/")[0]
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(filepath.Join(root, top), func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}
