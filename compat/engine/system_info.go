package engine

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/runtime"
)

// getInfo is GET /info: what `docker info` prints. Facts berth cannot
// change (the kernel's cgroup controllers) become docker's warnings; no
// warning is made up for what berth handles itself (IP forwarding and
// bridge netfilter are the CNI bridge plugin's).
func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info := system.Info{
		ID:                 s.engineID(),
		Driver:             "overlay2",
		DriverStatus:       s.driverStatus(),
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "null"}, Log: []string{"json-file"}},
		NFd:                openFDs(),
		NGoroutines:        goruntime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       s.cfg.CgroupDriver,
		NEventsListener:    s.journal.count(),
		OSType:             goruntime.GOOS,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     s.registryConfig(),
		NCPU:               goruntime.NumCPU(),
		DockerRootDir:      s.cfg.Root,
		HTTPProxy:          os.Getenv("HTTP_PROXY"),
		HTTPSProxy:         os.Getenv("HTTPS_PROXY"),
		NoProxy:            os.Getenv("NO_PROXY"),
		Name:               s.hostname(),
		Labels:             []string{},
		ServerVersion:      berthVersion(),
		Runtimes:           map[string]system.RuntimeWithStatus{},
		DefaultRuntime:     s.cfg.DefaultRuntime,
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		// Containers outlive berthd under their shims, and are adopted again.
		LiveRestoreEnabled: true,
		SecurityOptions:    securityOptions(),
		CDISpecDirs:        []string{},
	}
	if p := initBinary(); p != "" {
		info.InitBinary = filepath.Base(p)
	}
	if info.CgroupDriver == "" {
		info.CgroupDriver = "cgroupfs"
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
		info.Architecture = unix.ByteSliceToString(uts.Machine[:])
	}
	info.OperatingSystem, info.OSVersion = osRelease()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		info.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		info.IPv4Forwarding = strings.TrimSpace(string(b)) == "1"
	}
	for name, path := range s.cfg.Runtimes {
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: path}}
	}
	if rt, ok := s.cfg.Runtimes[s.cfg.DefaultRuntime]; ok {
		v := runtimeVersion(rt)
		info.RuncCommit = system.Commit{ID: v}
	}

	if s.containers != nil {
		h := s.containers.Host()
		info.CgroupVersion = "1"
		if h.CgroupV2 {
			info.CgroupVersion = "2"
		}
		known := h.Controllers != nil
		info.MemoryLimit = !known || h.Controllers["memory"]
		info.SwapLimit = h.SwapAccounting
		info.CPUCfsPeriod = !known || h.Controllers["cpu"]
		info.CPUCfsQuota = info.CPUCfsPeriod
		info.CPUShares = info.CPUCfsPeriod
		info.CPUSet = !known || h.Controllers["cpuset"]
		info.PidsLimit = !known || h.Controllers["pids"]
		info.OomKillDisable = !h.CgroupV2 && info.MemoryLimit
		info.Warnings = resourceWarnings(info)

		cs, err := s.containers.List(ctx)
		if err != nil {
			return err
		}
		info.Containers = len(cs)
		for _, c := range cs {
			switch {
			case runtime.StateOf(c) == runtime.Running && c.Paused:
				info.ContainersPaused++
			case runtime.StateOf(c) == runtime.Running:
				info.ContainersRunning++
			default:
				info.ContainersStopped++
			}
		}
	}
	if s.images != nil {
		imgs, err := s.images.List(ctx, "")
		if err != nil {
			return err
		}
		info.Images = len(imgs)
	}
	return writeJSON(w, http.StatusOK, info)
}

// resourceWarnings are docker's warnings for limits this host's cgroups
// cannot apply.
func resourceWarnings(info system.Info) []string {
	var ws []string
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{info.MemoryLimit, "memory limit"},
		{info.SwapLimit || !info.MemoryLimit, "swap limit"},
		{info.CPUCfsQuota, "cpu cfs quota"},
		{info.CPUCfsPeriod, "cpu cfs period"},
		{info.CPUShares, "cpu shares"},
		{info.CPUSet, "cpuset"},
		{info.PidsLimit, "pids limit"},
	} {
		if !c.ok {
			ws = append(ws, "WARNING: No "+c.what+" support")
		}
	}
	return ws
}

// engineID is a stable identity of this berthd: the same machine and
// root give the same ID (docker keeps a random one in its root; compat
// writes no files of its own).
func (s *Server) engineID() string {
	machine, _ := os.ReadFile("/etc/machine-id")
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(machine)) + "\x00" + s.cfg.Root))
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// driverStatus describes berth's layer store as docker's overlay2 does,
// naming it for what it is.
func (s *Server) driverStatus() [][2]string {
	fs := "<unknown>"
	var st unix.Statfs_t
	root := s.cfg.Root
	if root == "" {
		root = "/"
	}
	if unix.Statfs(root, &st) == nil {
		fs = fsName(int64(st.Type))
	}
	return [][2]string{
		{"Backing Filesystem", fs},
		{"Supports d_type", "true"},
		{"Native Overlay Diff", "true"},
		{"userxattr", "false"},
		{"Layer Store", "berth overlay snapshots"},
	}
}

// fsName is the name docker gives a file system's magic number.
func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case 0x2fc12fc1:
		return "zfs"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	}
	return "<unknown>"
}

// registryConfig reports the registries as berth reaches them: loopback
// may always use plain HTTP, as with docker.
func (s *Server) registryConfig() *registry.ServiceConfig {
	rc := &registry.ServiceConfig{
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		IndexConfigs: map[string]*registry.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: []string{}, Secure: true, Official: true},
		},
		Mirrors: []string{},
	}
	for _, m := range s.cfg.Mirrors["docker.io"] {
		rc.Mirrors = append(rc.Mirrors, m)
		rc.IndexConfigs["docker.io"].Mirrors = append(rc.IndexConfigs["docker.io"].Mirrors, m)
	}
	for _, host := range s.cfg.InsecureRegistries {
		if p, err := netip.ParsePrefix(host); err == nil {
			if !slices.Contains(rc.InsecureRegistryCIDRs, p) {
				rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p)
			}
			continue
		}
		rc.IndexConfigs[host] = &registry.IndexInfo{Name: host, Mirrors: s.cfg.Mirrors[host], Secure: false}
		if rc.IndexConfigs[host].Mirrors == nil {
			rc.IndexConfigs[host].Mirrors = []string{}
		}
	}
	return rc
}

// securityOptions are the confinements berth applies: docker's default
// seccomp profile, and the host's LSMs.
func securityOptions() []string {
	opts := []string{"name=seccomp,profile=builtin"}
	lsm := runtime.HostLSMs()
	if lsm.AppArmor {
		opts = append(opts, "name=apparmor")
	}
	if lsm.SELinux {
		opts = append(opts, "name=selinux")
	}
	return opts
}

// osRelease is the host's PRETTY_NAME and VERSION_ID.
func osRelease() (name, version string) {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	if name == "" {
		name = "Linux"
	}
	return name, version
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

var runtimeVersions sync.Map // binary → version

// runtimeVersion is the OCI runtime's version ("1.1.5"), asked once per
// binary.
func runtimeVersion(binary string) string {
	if v, ok := runtimeVersions.Load(binary); ok {
		return v.(string)
	}
	v := ""
	if out, err := exec.Command(binary, "--version").Output(); err == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		if f := strings.Fields(line); len(f) > 0 {
			v = f[len(f)-1]
		}
	}
	runtimeVersions.Store(binary, v)
	return v
}
