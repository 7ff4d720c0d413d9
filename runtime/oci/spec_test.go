package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// fakeHostDevices replaces the device lookups for one test.
func fakeHostDevices(t *testing.T, nodes map[string][]hostDevice, all []hostDevice) {
	t.Helper()
	oldLookup, oldAll := lookupDevices, allHostDevices
	t.Cleanup(func() { lookupDevices, allHostDevices = oldLookup, oldAll })
	lookupDevices = func(p string) ([]hostDevice, error) {
		d, ok := nodes[p]
		if !ok {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return d, nil
	}
	allHostDevices = func() ([]hostDevice, error) { return all, nil }
}

func baseContainer() Container {
	return Container{
		ID:     "c1",
		Rootfs: "/run/berth/bundles/c1/rootfs",
		Args:   []string{"/bin/sh", "-c", "true"},
		Env:    []string{"PATH=/bin"},
	}
}

var testHost = Host{NofileHardLimit: 20000, MinOOMScoreAdj: -1000, CgroupV2: true, CapLastCap: 40}

func mustGenerate(t *testing.T, c Container, h Host) *specs.Spec {
	t.Helper()
	s, err := Generate(c, h)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func TestGenerateDefaults(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	c := baseContainer()
	c.Hostname = "web"
	c.CgroupsPath = "/kubepods/pod123/c1"
	c.User = User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10}}
	c.Annotations = map[string]string{"io.kubernetes.cri.container-type": "container"}
	s := mustGenerate(t, c, testHost)

	zero := 0
	wantProcess := &specs.Process{
		User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10}},
		Args: []string{"/bin/sh", "-c", "true"},
		Env:  []string{"PATH=/bin"},
		Cwd:  "/",
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  DefaultCapabilities(),
			Effective: DefaultCapabilities(),
			Permitted: DefaultCapabilities(),
		},
		Rlimits:     []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 20000}},
		OOMScoreAdj: &zero,
	}
	if diff := cmp.Diff(wantProcess, s.Process); diff != "" {
		t.Errorf("process (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&specs.Root{Path: c.Rootfs}, s.Root); diff != "" {
		t.Errorf("root (-want +got):\n%s", diff)
	}
	if s.Version != SpecVersion || s.Hostname != "web" {
		t.Errorf("version %q hostname %q", s.Version, s.Hostname)
	}
	if diff := cmp.Diff(c.Annotations, s.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}

	wantMounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	if diff := cmp.Diff(wantMounts, s.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}

	wantLinux := &specs.Linux{
		Resources:     &specs.LinuxResources{Devices: defaultDeviceRules()},
		CgroupsPath:   "/kubepods/pod123/c1",
		Namespaces:    []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}, {Type: "cgroup"}},
		MaskedPaths:   DefaultMaskedPaths(),
		ReadonlyPaths: DefaultReadonlyPaths(),
	}
	if diff := cmp.Diff(wantLinux, s.Linux); diff != "" {
		t.Errorf("linux (-want +got):\n%s", diff)
	}
	if got := s.Linux.Resources.Devices; len(got) != 10 || got[0].Allow || got[0].Access != "rwm" || got[0].Type != "" {
		t.Errorf("device rules must start with deny-all: %+v", got)
	}
}

func TestGenerateInvalid(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	for _, tc := range []struct {
		name   string
		modify func(*Container)
	}{
		{"relative rootfs", func(c *Container) { c.Rootfs = "rootfs" }},
		{"no args", func(c *Container) { c.Args = nil }},
		{"relative cwd", func(c *Container) { c.Cwd = "work" }},
		{"hostname with host uts", func(c *Container) { c.Hostname = "h"; c.Namespaces.UTS = NamespaceHost }},
		{"hostname with joined uts", func(c *Container) { c.Hostname = "h"; c.Namespaces.UTS = "/proc/1/ns/uts" }},
		{"bad namespace", func(c *Container) { c.Namespaces.Network = "netns-1" }},
		{"unknown capability", func(c *Container) { c.CapAdd = []string{"FLY"} }},
		{"negative shm", func(c *Container) { c.ShmSize = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			tc.modify(&c)
			_, err := Generate(c, testHost)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	defaults := DefaultCapabilities()
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(defaults), func(c string) bool { return slices.Contains(drop, c) })
	}
	allBut := func(drop ...string) []string {
		return slices.DeleteFunc(AllCapabilities(0), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name       string
		add, drop  []string
		privileged bool
		lastCap    int
		want       []string
	}{
		{name: "defaults", want: defaults},
		{name: "add short name", add: []string{"NET_ADMIN"}, want: append(slices.Clone(defaults), "CAP_NET_ADMIN")},
		{name: "add lower case with prefix", add: []string{"cap_sys_admin"}, want: append(slices.Clone(defaults), "CAP_SYS_ADMIN")},
		{name: "add existing is not duplicated", add: []string{"CHOWN"}, want: defaults},
		{name: "drop", drop: []string{"CHOWN", "CAP_NET_RAW"}, want: without("CAP_CHOWN", "CAP_NET_RAW")},
		{name: "drop ALL", drop: []string{"ALL"}, want: []string{}},
		{name: "drop ALL then add", drop: []string{"ALL"}, add: []string{"NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add ALL", add: []string{"ALL"}, want: AllCapabilities(0)},
		{name: "add all lower case", add: []string{"all"}, want: AllCapabilities(0)},
		{name: "add ALL drop one", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, want: allBut("CAP_SYS_ADMIN")},
		{name: "add wins over drop", add: []string{"CHOWN"}, drop: []string{"CHOWN"}, want: append(without("CAP_CHOWN"), "CAP_CHOWN")},
		{name: "add ALL limited by kernel", add: []string{"ALL"}, lastCap: 37, want: AllCapabilities(0)[:38]},
		{name: "privileged ignores drops", privileged: true, drop: []string{"ALL"}, want: AllCapabilities(0)},
		{name: "privileged limited by kernel", privileged: true, lastCap: 38, want: AllCapabilities(0)[:39]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.CapAdd, c.CapDrop, c.Privileged = tc.add, tc.drop, tc.privileged
			h := testHost
			h.CapLastCap = tc.lastCap
			s := mustGenerate(t, c, h)
			want := &specs.LinuxCapabilities{Bounding: tc.want, Effective: tc.want, Permitted: tc.want}
			if diff := cmp.Diff(want, s.Process.Capabilities, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("capabilities (-want +got):\n%s", diff)
			}
		})
	}
	if n := len(AllCapabilities(0)); n != 41 {
		t.Errorf("AllCapabilities: %d, want 41", n)
	}
}

func TestPrivileged(t *testing.T) {
	null := hostDevice{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, Mode: 0o666}
	sda := hostDevice{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, Mode: 0o660, GID: 6}
	fuse := hostDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, Mode: 0o666}
	fakeHostDevices(t, map[string][]hostDevice{"/dev/fuse": {fuse}}, []hostDevice{null, sda})

	c := baseContainer()
	c.Privileged = true
	c.MaskedPaths = []string{"/proc/kcore"} // ignored: privileged
	c.Devices = []Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rw"}}
	s := mustGenerate(t, c, testHost)

	if diff := cmp.Diff(AllCapabilities(0), s.Process.Capabilities.Bounding); diff != "" {
		t.Errorf("bounding (-want +got):\n%s", diff)
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && !slices.Contains(m.Options, "rw") {
			t.Errorf("%s not rw: %v", m.Destination, m.Options)
		}
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %v readonly %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	wantRules := []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	if diff := cmp.Diff(wantRules, s.Linux.Resources.Devices); diff != "" {
		t.Errorf("device rules (-want +got):\n%s", diff)
	}
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
	}
	if diff := cmp.Diff([]string{"/dev/null", "/dev/sda", "/dev/fuse"}, paths); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	if *s.Linux.Devices[1].GID != 6 || *s.Linux.Devices[1].FileMode != 0o660 || s.Linux.Devices[1].Type != "b" {
		t.Errorf("sda: %+v", s.Linux.Devices[1])
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			t.Errorf("privileged container got a cgroup namespace")
		}
	}
}

func TestDevices(t *testing.T) {
	fuse := hostDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, Mode: 0o666}
	snd := []hostDevice{
		{Path: "/dev/snd/controlC0", Type: "c", Major: 116, Minor: 2, Mode: 0o660, GID: 29},
		{Path: "/dev/snd/timer", Type: "c", Major: 116, Minor: 33, Mode: 0o660, GID: 29},
	}
	fakeHostDevices(t, map[string][]hostDevice{"/dev/fuse": {fuse}, "/dev/snd": snd}, nil)

	c := baseContainer()
	c.Devices = []Device{
		{HostPath: "/dev/fuse", ContainerPath: "/dev/myfuse"},
		{HostPath: "/dev/snd", ContainerPath: "/dev/sound", Permissions: "rw"},
	}
	s := mustGenerate(t, c, testHost)

	mode, mode2, zero, audio := fs.FileMode(0o666), fs.FileMode(0o660), uint32(0), uint32(29)
	wantDevices := []specs.LinuxDevice{
		{Path: "/dev/myfuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &zero, GID: &zero},
		{Path: "/dev/sound/controlC0", Type: "c", Major: 116, Minor: 2, FileMode: &mode2, UID: &zero, GID: &audio},
		{Path: "/dev/sound/timer", Type: "c", Major: 116, Minor: 33, FileMode: &mode2, UID: &zero, GID: &audio},
	}
	if diff := cmp.Diff(wantDevices, s.Linux.Devices); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	wantRules := append(defaultDeviceRules(),
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(116), Minor: i64(2), Access: "rw"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(116), Minor: i64(33), Access: "rw"},
	)
	if diff := cmp.Diff(wantRules, s.Linux.Resources.Devices); diff != "" {
		t.Errorf("device rules (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		dev  Device
		want error
	}{
		{"bad permissions", Device{HostPath: "/dev/fuse", Permissions: "rx"}, errdefs.ErrInvalidArgument},
		{"relative host path", Device{HostPath: "dev/fuse"}, errdefs.ErrInvalidArgument},
		{"missing", Device{HostPath: "/dev/nope"}, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.Devices = []Device{tc.dev}
			if _, err := Generate(c, testHost); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestResourcesPassThrough(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	limit := int64(64 << 20)
	callerRule := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}
	in := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &limit},
		Devices: []specs.LinuxDeviceCgroup{callerRule},
	}
	c := baseContainer()
	c.Resources = in
	s := mustGenerate(t, c, testHost)
	if s.Linux.Resources.Memory != in.Memory {
		t.Errorf("memory not passed through")
	}
	if diff := cmp.Diff(append(defaultDeviceRules(), callerRule), s.Linux.Resources.Devices); diff != "" {
		t.Errorf("device rules (-want +got):\n%s", diff)
	}
	if len(in.Devices) != 1 {
		t.Errorf("caller's resources modified: %+v", in.Devices)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	p := func(v int) *int { return &v }
	for _, tc := range []struct {
		name string
		req  *int
		min  int
		want int
	}{
		{"unset", nil, -1000, 0},
		{"unset, host minimum above 0", nil, 500, 500},
		{"guaranteed pod as root", p(-997), -1000, -997},
		{"guaranteed pod clamped", p(-997), 0, 0},
		{"clamped to our own value", p(-500), -100, -100},
		{"above minimum kept", p(1000), 0, 1000},
		{"above range", p(2000), 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.OOMScoreAdj = tc.req
			h := testHost
			h.MinOOMScoreAdj = tc.min
			s := mustGenerate(t, c, h)
			if got := *s.Process.OOMScoreAdj; got != tc.want {
				t.Errorf("oomScoreAdj = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRlimits(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	for _, tc := range []struct {
		name  string
		in    []specs.POSIXRlimit
		limit uint64
		want  []specs.POSIXRlimit
	}{
		{"default clamped", nil, 20000, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 20000}}},
		{"default, no limit known", nil, 0, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}}},
		{"default under the limit", nil, 1 << 21, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}}},
		{"none", []specs.POSIXRlimit{}, 20000, nil},
		{
			"caller's clamped, others kept",
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 65536, Soft: 30000}, {Type: "RLIMIT_NPROC", Hard: 1 << 30, Soft: 1 << 30}},
			20000,
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 20000}, {Type: "RLIMIT_NPROC", Hard: 1 << 30, Soft: 1 << 30}},
		},
		{"soft below limit kept", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 65536, Soft: 1024}}, 20000, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 1024}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.Rlimits = tc.in
			h := testHost
			h.NofileHardLimit = tc.limit
			s := mustGenerate(t, c, h)
			if diff := cmp.Diff(tc.want, s.Process.Rlimits, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rlimits (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadonlyRootfsAndProcess(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	c := baseContainer()
	c.ReadonlyRootfs = true
	c.NoNewPrivileges = true
	c.Terminal = true
	c.Cwd = "/work"
	s := mustGenerate(t, c, testHost)
	if !s.Root.Readonly || !s.Process.NoNewPrivileges || !s.Process.Terminal || s.Process.Cwd != "/work" {
		t.Errorf("root %+v process %+v", s.Root, s.Process)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	for _, tc := range []struct {
		name                   string
		masked, readonly       []string
		wantMasked, wantReadon []string
	}{
		{"defaults", nil, nil, DefaultMaskedPaths(), DefaultReadonlyPaths()},
		{"none", []string{}, []string{}, []string{}, []string{}},
		{"custom", []string{"/proc/foo"}, []string{"/proc/bar"}, []string{"/proc/foo"}, []string{"/proc/bar"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.MaskedPaths, c.ReadonlyPaths = tc.masked, tc.readonly
			s := mustGenerate(t, c, testHost)
			if diff := cmp.Diff(tc.wantMasked, s.Linux.MaskedPaths); diff != "" {
				t.Errorf("masked (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantReadon, s.Linux.ReadonlyPaths); diff != "" {
				t.Errorf("readonly (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	defaultDests := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
	for _, tc := range []struct {
		name        string
		mounts      []Mount
		shmSize     int64
		wantDests   []string
		wantUser    []specs.Mount // the mounts after the defaults
		wantRootfsP string
	}{
		{
			name:      "bind defaults to rprivate rw",
			mounts:    []Mount{{Source: "/var/lib/data", Destination: "/data"}},
			wantDests: append(slices.Clone(defaultDests), "/data"),
			wantUser:  []specs.Mount{{Source: "/var/lib/data", Destination: "/data", Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}},
		},
		{
			name: "read-only with propagation and extra options",
			mounts: []Mount{
				{Source: "/a", Destination: "/a", ReadOnly: true, Propagation: "rslave"},
				{Source: "/b", Destination: "/b", Propagation: "private", Options: []string{"nosuid"}},
			},
			wantDests: append(slices.Clone(defaultDests), "/a", "/b"),
			wantUser: []specs.Mount{
				{Source: "/a", Destination: "/a", Type: "bind", Options: []string{"rbind", "rslave", "ro"}},
				{Source: "/b", Destination: "/b", Type: "bind", Options: []string{"rbind", "rprivate", "rw", "nosuid"}},
			},
			wantRootfsP: "rslave",
		},
		{
			name: "rshared wins over rslave",
			mounts: []Mount{
				{Source: "/a", Destination: "/a", Propagation: "rshared"},
				{Source: "/b", Destination: "/b", Propagation: "rslave"},
			},
			wantDests: append(slices.Clone(defaultDests), "/a", "/b"),
			wantUser: []specs.Mount{
				{Source: "/a", Destination: "/a", Type: "bind", Options: []string{"rbind", "rshared", "rw"}},
				{Source: "/b", Destination: "/b", Type: "bind", Options: []string{"rbind", "rslave", "rw"}},
			},
			wantRootfsP: "rshared",
		},
		{
			name:      "pod /dev/shm replaces the default",
			mounts:    []Mount{{Source: "/run/berth/sandboxes/p1/shm", Destination: "/dev/shm/"}},
			wantDests: []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm"},
			wantUser:  []specs.Mount{{Source: "/run/berth/sandboxes/p1/shm", Destination: "/dev/shm", Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}},
		},
		{
			name:      "/dev replaces every default below it",
			mounts:    []Mount{{Source: "/dev", Destination: "/dev"}},
			wantDests: []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"},
			wantUser:  []specs.Mount{{Source: "/dev", Destination: "/dev", Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}},
		},
		{
			name: "parents before children, stable",
			mounts: []Mount{
				{Source: "/x/y", Destination: "/data/y"},
				{Source: "/z", Destination: "/z"},
				{Source: "/x", Destination: "/data"},
			},
			wantDests: append(slices.Clone(defaultDests), "/z", "/data", "/data/y"),
		},
		{
			name:      "tmpfs mount",
			mounts:    []Mount{{Source: "tmpfs", Destination: "/tmp", Type: "tmpfs", Options: []string{"size=1m"}}},
			wantDests: append(slices.Clone(defaultDests), "/tmp"),
			wantUser:  []specs.Mount{{Source: "tmpfs", Destination: "/tmp", Type: "tmpfs", Options: []string{"rw", "size=1m"}}},
		},
		{
			name:      "shm size",
			shmSize:   128 << 20,
			wantDests: defaultDests,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.Mounts = tc.mounts
			c.ShmSize = tc.shmSize
			s := mustGenerate(t, c, testHost)
			var dests []string
			for _, m := range s.Mounts {
				dests = append(dests, m.Destination)
			}
			if diff := cmp.Diff(tc.wantDests, dests); diff != "" {
				t.Errorf("destinations (-want +got):\n%s", diff)
			}
			if tc.wantUser != nil {
				if diff := cmp.Diff(tc.wantUser, s.Mounts[len(s.Mounts)-len(tc.wantUser):]); diff != "" {
					t.Errorf("user mounts (-want +got):\n%s", diff)
				}
			}
			if s.Linux.RootfsPropagation != tc.wantRootfsP {
				t.Errorf("rootfsPropagation = %q, want %q", s.Linux.RootfsPropagation, tc.wantRootfsP)
			}
			if tc.shmSize != 0 {
				if got := s.Mounts[3].Options[4]; got != "size=131072k" {
					t.Errorf("shm size option %q", got)
				}
			}
		})
	}

	for _, tc := range []struct {
		name   string
		mounts []Mount
	}{
		{"relative destination", []Mount{{Source: "/a", Destination: "a"}}},
		{"relative bind source", []Mount{{Source: "a", Destination: "/a"}}},
		{"duplicate destination", []Mount{{Source: "/a", Destination: "/a"}, {Source: "/b", Destination: "/a/"}}},
		{"unknown propagation", []Mount{{Source: "/a", Destination: "/a", Propagation: "bidirectional"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.Mounts = tc.mounts
			if _, err := Generate(c, testHost); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestNamespaces(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	for _, tc := range []struct {
		name string
		ns   Namespaces
		v2   bool
		want []specs.LinuxNamespace
	}{
		{
			name: "all new, cgroup v1",
			want: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}},
		},
		{
			name: "all new, cgroup v2",
			v2:   true,
			want: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}, {Type: "cgroup"}},
		},
		{
			name: "pod container joins the sandbox",
			ns:   Namespaces{Network: "/run/berth/netns/p1", IPC: "/proc/42/ns/ipc", UTS: "/proc/42/ns/uts"},
			want: []specs.LinuxNamespace{
				{Type: "pid"},
				{Type: "ipc", Path: "/proc/42/ns/ipc"},
				{Type: "uts", Path: "/proc/42/ns/uts"},
				{Type: "mount"},
				{Type: "network", Path: "/run/berth/netns/p1"},
			},
		},
		{
			name: "host namespaces are not listed",
			ns:   Namespaces{Network: NamespaceHost, IPC: NamespaceHost, UTS: NamespaceHost, PID: NamespaceHost},
			want: []specs.LinuxNamespace{{Type: "mount"}},
		},
		{
			name: "shared pid namespace",
			ns:   Namespaces{PID: "/proc/42/ns/pid", Network: NamespaceHost},
			want: []specs.LinuxNamespace{{Type: "pid", Path: "/proc/42/ns/pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.Namespaces = tc.ns
			h := testHost
			h.CgroupV2 = tc.v2
			s := mustGenerate(t, c, h)
			if diff := cmp.Diff(tc.want, s.Linux.Namespaces); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUserNamespace: a pod's user namespace is joined first, with its
// mappings repeated; what cannot work in one is refused.
func TestUserNamespace(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	c := baseContainer()
	c.Namespaces = Namespaces{User: "/run/berth/userns/p1", Network: "/run/berth/netns/p1", IPC: "/proc/42/ns/ipc", UTS: "/proc/42/ns/uts"}
	c.UIDMappings, c.GIDMappings = maps, maps
	v1 := testHost
	v1.CgroupV2 = false
	s := mustGenerate(t, c, v1)
	want := []specs.LinuxNamespace{
		{Type: "user", Path: "/run/berth/userns/p1"},
		{Type: "pid"},
		{Type: "ipc", Path: "/proc/42/ns/ipc"},
		{Type: "uts", Path: "/proc/42/ns/uts"},
		{Type: "mount"},
		{Type: "network", Path: "/run/berth/netns/p1"},
	}
	if diff := cmp.Diff(want, s.Linux.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if !slices.Equal(s.Linux.UIDMappings, maps) || !slices.Equal(s.Linux.GIDMappings, maps) {
		t.Errorf("mappings = %v / %v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	// Without a user namespace, mappings given by mistake are not passed.
	plain := baseContainer()
	plain.UIDMappings = maps
	if s := mustGenerate(t, plain, testHost); s.Linux.UIDMappings != nil {
		t.Errorf("mappings without a user namespace: %v", s.Linux.UIDMappings)
	}
	for name, change := range map[string]func(*Container){
		"no mappings":   func(c *Container) { c.UIDMappings = nil },
		"relative path": func(c *Container) { c.Namespaces.User = "userns/p1" },
		"privileged":    func(c *Container) { c.Privileged = true },
		"host network":  func(c *Container) { c.Namespaces.Network = NamespaceHost },
		"host PID":      func(c *Container) { c.Namespaces.PID = NamespaceHost },
		"host IPC":      func(c *Container) { c.Namespaces.IPC = NamespaceHost },
		"host UTS":      func(c *Container) { c.Namespaces.UTS = NamespaceHost },
	} {
		bad := c
		change(&bad)
		if _, err := Generate(bad, testHost); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestSysctls(t *testing.T) {
	fakeHostDevices(t, nil, nil)
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		ns      Namespaces
		wantErr bool
	}{
		{name: "none"},
		{name: "net", sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "net.core.somaxconn": "1024"}},
		{name: "net with slashes", sysctls: map[string]string{"net/ipv4/ip_forward": "1"}},
		{name: "net in a joined netns", sysctls: map[string]string{"net.ipv4.ip_forward": "1"}, ns: Namespaces{Network: "/run/berth/netns/p1"}},
		{name: "ipc", sysctls: map[string]string{"kernel.shmmax": "1", "kernel.shm_rmid_forced": "1", "kernel.msgmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.msg_max": "10"}},
		{name: "net with host network", sysctls: map[string]string{"net.ipv4.ip_forward": "1"}, ns: Namespaces{Network: NamespaceHost}, wantErr: true},
		{name: "ipc with host ipc", sysctls: map[string]string{"kernel.shmmax": "1"}, ns: Namespaces{IPC: NamespaceHost}, wantErr: true},
		{name: "ipc with host network is fine", sysctls: map[string]string{"kernel.shmmax": "1"}, ns: Namespaces{Network: NamespaceHost}},
		{name: "not namespaced", sysctls: map[string]string{"kernel.panic": "1"}, wantErr: true},
		{name: "vm", sysctls: map[string]string{"vm.max_map_count": "262144"}, wantErr: true},
		{name: "kernel.semmni is not kernel.sem", sysctls: map[string]string{"kernel.semx": "1"}, wantErr: true},
		{name: "fs but not mqueue", sysctls: map[string]string{"fs.file-max": "1"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseContainer()
			c.Sysctls = tc.sysctls
			c.Namespaces = tc.ns
			s, err := Generate(c, testHost)
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.sysctls, s.Linux.Sysctl); diff != "" {
				t.Errorf("sysctl (-want +got):\n%s", diff)
			}
		})
	}
}
