package cgroupstats

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
)

// Raw is what the Docker Engine API's stats show as the kernel writes
// it: every key of memory.stat (v1: cache, rss, total_inactive_file...;
// v2: anon, file, inactive_file...), and the CPU time per CPU (v1
// cpuacct.usage_percpu; v2 has none).
type Raw struct {
	MemoryStat map[string]uint64
	PerCPU     []uint64
}

// ReadRaw reads the Raw figures of the cgroup at group (see Read). A
// missing cgroup gives an error wrapping ErrNoCgroup.
func ReadRaw(group string) (*Raw, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		dir := path.Join(unifiedMount, group)
		st, err := readKeyValues(path.Join(dir, "memory.stat"))
		if err != nil {
			return nil, noCgroup(group, err)
		}
		return &Raw{MemoryStat: st}, nil
	case cgroups.Legacy, cgroups.Hybrid:
		subsystems, err := v1Hierarchy()
		if err != nil {
			return nil, fmt.Errorf("cgroup v1 hierarchy: %w", err)
		}
		raw := &Raw{}
		for _, s := range subsystems {
			p, ok := s.(interface{ Path(string) string })
			if !ok {
				continue
			}
			dir := p.Path(group)
			switch s.Name() {
			case cgroup1.Memory:
				if raw.MemoryStat, err = readKeyValues(path.Join(dir, "memory.stat")); err != nil {
					return nil, noCgroup(group, err)
				}
			case cgroup1.Cpuacct:
				b, err := os.ReadFile(path.Join(dir, "cpuacct.usage_percpu"))
				if err != nil {
					return nil, noCgroup(group, err)
				}
				for _, f := range strings.Fields(string(b)) {
					n, _ := strconv.ParseUint(f, 10, 64)
					raw.PerCPU = append(raw.PerCPU, n)
				}
			}
		}
		return raw, nil
	}
	return nil, fmt.Errorf("cgroup %s: no cgroup file system mounted: %w", group, ErrNoCgroup)
}

func noCgroup(group string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup %s: %w", group, ErrNoCgroup)
	}
	return err
}

// readKeyValues reads a file of "key value" lines.
func readKeyValues(p string) (map[string]uint64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture docker supports.
const clockTicks = 100

// SystemCPUNanos is the host's CPU time since boot (the modes of every
// CPU, from /proc/stat), in ns: docker's system_cpu_usage, against which
// a container's CPU time gives its CPU percentage.
func SystemCPUNanos() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq, as docker adds them
		// (steal and the guest times, counted in user already, are not).
		var ticks uint64
		for _, f := range fields[1:min(len(fields), 8)] {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: %w", err)
			}
			ticks += n
		}
		return ticks * (1e9 / clockTicks), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/stat has no cpu line")
}

// Unified reports whether the host runs cgroup v2 only.
func Unified() bool { return cgroups.Mode() == cgroups.Unified }
