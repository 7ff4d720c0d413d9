// Package oci generates OCI runtime specs (config.json) for berth's
// containers. Generate is a pure function from a neutral Container
// description and the Host facts to a specs.Spec: it reads nothing from the
// machine except device nodes, which go through package variables that tests
// replace. The CRI and docker translations into Container live elsewhere;
// this package does not import the CRI API.
//
// The defaults follow docker and containerd's CRI plugin: docker's default
// capability set, the default mounts, masked and read-only paths, a
// deny-all device cgroup with the standard character devices allowed.
package oci

import (
	"fmt"
	"maps"
	"path"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// NamespaceHost as a Namespaces field means the host's namespace: the
// namespace is not listed in the spec, so the container stays in runc's.
const NamespaceHost = "host"

// DefaultShmSize is the size of /dev/shm when Container.ShmSize is 0.
const DefaultShmSize = 64 << 20

// DefaultNofile is RLIMIT_NOFILE (soft and hard) when Container.Rlimits is
// nil, before clamping to Host.NofileHardLimit.
const DefaultNofile = 1048576

// Container is the neutral description of a container that Generate turns
// into an OCI spec. The zero value of each field means "the default".
type Container struct {
	// ID is the container id; it is not written to the spec but names the
	// container in errors.
	ID string
	// Rootfs is the absolute path of the already mounted root file system.
	Rootfs string
	// Args is the process's argv; it must not be empty (see MergeProcess).
	Args []string
	// Env is the process environment as KEY=value.
	Env []string
	// Cwd is the absolute working directory; "" means "/".
	Cwd string
	// User is the resolved process user (see ResolveUser).
	User User
	// Terminal allocates a pty for the process.
	Terminal bool
	// Hostname is set in a new UTS namespace; it must be "" when the UTS
	// namespace is joined or the host's.
	Hostname string
	// Mounts are added after the default mounts; a mount replaces a default
	// one at the same destination, and a /dev mount replaces every default
	// mount below /dev. They are ordered by depth of the destination
	// (stable), so a parent is mounted before its children.
	Mounts []Mount
	// Devices are host device nodes made available in the container.
	Devices []Device
	// Namespaces says, per namespace, whether to create, join or share the
	// host's.
	Namespaces Namespaces
	// CgroupsPath is passed to the runtime as linux.cgroupsPath:
	// "/kubepods/pod123/<id>" (cgroupfs) or "slice:prefix:name" (systemd).
	CgroupsPath string
	// Privileged gives every capability and host device, rw /sys and
	// /sys/fs/cgroup, and no masked or read-only paths.
	Privileged bool
	// ReadonlyRootfs mounts the root file system read-only.
	ReadonlyRootfs bool
	// NoNewPrivileges sets the no_new_privs bit.
	NoNewPrivileges bool
	// CapAdd and CapDrop tweak DefaultCapabilities, docker's way: names
	// with or without "CAP_", any case; "ALL" is allowed in either. See
	// capabilities for the precedence. Ignored when Privileged.
	CapAdd, CapDrop []string
	// OOMScoreAdj is the process's oom_score_adj; nil means 0. It is raised
	// to Host.MinOOMScoreAdj, never refused.
	OOMScoreAdj *int
	// Resources is passed through; the device rules Generate computes come
	// first in linux.resources.devices, the caller's are appended.
	Resources *specs.LinuxResources
	// Sysctls are namespaced sysctls only (see validateSysctls).
	Sysctls map[string]string
	// Annotations are copied to the spec.
	Annotations map[string]string
	// MaskedPaths and ReadonlyPaths: nil means the defaults
	// (DefaultMaskedPaths, DefaultReadonlyPaths); empty non-nil means none.
	// Privileged containers get none.
	MaskedPaths, ReadonlyPaths []string
	// Rlimits: nil means RLIMIT_NOFILE soft=hard=DefaultNofile. Every
	// RLIMIT_NOFILE is clamped to Host.NofileHardLimit.
	Rlimits []specs.POSIXRlimit
	// ShmSize is the size in bytes of the default /dev/shm tmpfs (0 means
	// DefaultShmSize). Unused when Mounts has a /dev/shm (the pod's).
	ShmSize int64
	// UIDMappings and GIDMappings are the ID mappings of the user
	// namespace Namespaces.User joins.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
}

// User is a resolved process identity.
type User struct {
	UID uint32
	GID uint32
	// AdditionalGids are the supplementary groups.
	AdditionalGids []uint32
}

// Mount is a mount into the container.
type Mount struct {
	// Source is the host path for a bind mount, else the file system source.
	Source string
	// Destination is the absolute path in the container.
	Destination string
	// Type is "bind" when "".
	Type string
	// ReadOnly adds "ro" (else "rw").
	ReadOnly bool
	// Propagation is "", "private"/"rprivate", "rslave"/"slave" or
	// "rshared"/"shared". Bind mounts default to rprivate. rslave and
	// rshared also set the rootfs propagation, as containerd does; the
	// caller must make sure the source's mount is shared (or slave).
	Propagation string
	// Options are appended to the computed options.
	Options []string
	// RecursiveReadOnly: everything mounted below Source must be
	// read-only too. The caller stages such a source (see
	// runtime/rootfs.Stage); Generate requires ReadOnly.
	RecursiveReadOnly bool
}

// Device is a host device node (or a directory of them) given to the
// container.
type Device struct {
	// HostPath is the device node on the host; symlinks are followed. A
	// directory adds every device node below it.
	HostPath string
	// ContainerPath is where it appears; "" means HostPath.
	ContainerPath string
	// Permissions is a subset of "rwm"; "" means "rwm".
	Permissions string
}

// Namespaces holds, per namespace, "" for a new namespace, NamespaceHost
// for the host's, or the absolute path of a namespace to join
// (/run/berth/netns/X, /proc/PID/ns/ipc). The mount namespace is always new;
// the cgroup namespace is new on cgroup v2 unless privileged.
//
// User is different: "" (or NamespaceHost) is the host's user namespace,
// a path joins the pod's, whose mappings Container.UIDMappings and
// GIDMappings must repeat (runc wants them to know the container's root).
// The namespaces the container creates are then owned by it, and the ones
// it joins must be: a pod's are made inside its user namespace.
type Namespaces struct {
	Network, IPC, UTS, PID string
	User                   string
}

// Host holds facts about this machine that Generate needs. ReadHost reads
// them; tests write them.
type Host struct {
	// NofileHardLimit caps RLIMIT_NOFILE; 0 means no cap.
	NofileHardLimit uint64
	// MinOOMScoreAdj is the lowest oom_score_adj this process may set.
	MinOOMScoreAdj int
	// CgroupV2 is true on the unified hierarchy only.
	CgroupV2 bool
	// Controllers are the cgroup controllers the OCI runtime can use here
	// (mounted v1 hierarchies, or the v2 root's cgroup.controllers); nil
	// means unknown. Supported drops limits of the others.
	Controllers map[string]bool
	// SwapAccounting is true where memory swap limits can be set.
	SwapAccounting bool
	// CapLastCap is the kernel's highest capability number
	// (/proc/sys/kernel/cap_last_cap); 0 means every capability in
	// AllCapabilities.
	CapLastCap int
	// CapMask is this process's effective capability set (bit n is
	// capability n); 0 means unknown. A runtime cannot grant what its
	// caller lacks, so "all capabilities" (privileged, ALL) means these.
	CapMask uint64
}

// Generate returns the OCI spec for c on a host described by h. Invalid
// input returns an error wrapping errdefs.ErrInvalidArgument. Only the
// device lookups touch the host. linux.seccomp is left to the caller: the
// profile (DefaultSeccomp, LoadSeccompProfile) depends on the capabilities
// computed here.
func Generate(c Container, h Host) (*specs.Spec, error) {
	if err := validate(c); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	s, err := generate(c, h)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	return s, nil
}

func validate(c Container) error {
	if !path.IsAbs(c.Rootfs) {
		return fmt.Errorf("rootfs %q is not an absolute path: %w", c.Rootfs, errdefs.ErrInvalidArgument)
	}
	if len(c.Args) == 0 {
		return fmt.Errorf("no command: %w", errdefs.ErrInvalidArgument)
	}
	if c.Cwd != "" && !path.IsAbs(c.Cwd) {
		return fmt.Errorf("working directory %q is not an absolute path: %w", c.Cwd, errdefs.ErrInvalidArgument)
	}
	if c.ShmSize < 0 {
		return fmt.Errorf("negative shm size %d: %w", c.ShmSize, errdefs.ErrInvalidArgument)
	}
	if user := c.Namespaces.User; user != "" && user != NamespaceHost {
		if !path.IsAbs(user) {
			return fmt.Errorf("user namespace %q: want %q or an absolute path: %w", user, NamespaceHost, errdefs.ErrInvalidArgument)
		}
		if len(c.UIDMappings) == 0 || len(c.GIDMappings) == 0 {
			return fmt.Errorf("user namespace %s without uid and gid mappings: %w", user, errdefs.ErrInvalidArgument)
		}
		if c.Privileged {
			return fmt.Errorf("a privileged container cannot run in a user namespace: %w", errdefs.ErrInvalidArgument)
		}
		ns := c.Namespaces
		for _, n := range [][2]string{{"network", ns.Network}, {"IPC", ns.IPC}, {"PID", ns.PID}, {"UTS", ns.UTS}} {
			if kind, mode := n[0], n[1]; mode == NamespaceHost {
				// The host's namespaces belong to the host's user
				// namespace: nothing in the pod's may join them.
				return fmt.Errorf("the host's %s namespace cannot be shared in a user namespace: %w", kind, errdefs.ErrInvalidArgument)
			}
		}
	}
	if c.Hostname != "" && c.Namespaces.UTS != "" {
		// runc refuses a hostname without a new UTS namespace, and setting
		// it in a joined one would rename the whole pod.
		return fmt.Errorf("hostname %q needs a new UTS namespace: %w", c.Hostname, errdefs.ErrInvalidArgument)
	}
	return validateSysctls(c.Sysctls, c.Namespaces)
}

func generate(c Container, h Host) (*specs.Spec, error) {
	caps, err := capabilities(c, h)
	if err != nil {
		return nil, err
	}
	namespaces, err := linuxNamespaces(c, h)
	if err != nil {
		return nil, err
	}
	mounts, rootPropagation, err := mounts(c)
	if err != nil {
		return nil, err
	}
	devices, deviceRules, err := devices(c)
	if err != nil {
		return nil, err
	}

	cwd := c.Cwd
	if cwd == "" {
		cwd = "/"
	}
	oomScoreAdj := 0
	if c.OOMScoreAdj != nil {
		oomScoreAdj = *c.OOMScoreAdj
	}
	oomScoreAdj = min(max(oomScoreAdj, h.MinOOMScoreAdj, -1000), 1000)

	s := &specs.Spec{
		Version: SpecVersion,
		Root: &specs.Root{
			Path:     c.Rootfs,
			Readonly: c.ReadonlyRootfs,
		},
		Process: &specs.Process{
			Terminal: c.Terminal,
			User: specs.User{
				UID:            c.User.UID,
				GID:            c.User.GID,
				AdditionalGids: slices.Clone(c.User.AdditionalGids),
			},
			Args:            slices.Clone(c.Args),
			Env:             slices.Clone(c.Env),
			Cwd:             cwd,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: slices.Clone(caps), Permitted: slices.Clone(caps)},
			Rlimits:         rlimits(c.Rlimits, h),
			NoNewPrivileges: c.NoNewPrivileges,
			OOMScoreAdj:     &oomScoreAdj,
		},
		Hostname:    c.Hostname,
		Mounts:      mounts,
		Annotations: maps.Clone(c.Annotations),
		Linux: &specs.Linux{
			Sysctl:            maps.Clone(c.Sysctls),
			Resources:         resources(c.Resources, deviceRules),
			CgroupsPath:       c.CgroupsPath,
			Namespaces:        namespaces,
			Devices:           devices,
			RootfsPropagation: rootPropagation,
		},
	}
	if user := c.Namespaces.User; user != "" && user != NamespaceHost {
		s.Linux.UIDMappings = slices.Clone(c.UIDMappings)
		s.Linux.GIDMappings = slices.Clone(c.GIDMappings)
	}
	if !c.Privileged {
		s.Linux.MaskedPaths = orDefault(c.MaskedPaths, DefaultMaskedPaths())
		s.Linux.ReadonlyPaths = orDefault(c.ReadonlyPaths, DefaultReadonlyPaths())
	}
	return s, nil
}

// resources copies the caller's resources with the device rules in front.
func resources(in *specs.LinuxResources, deviceRules []specs.LinuxDeviceCgroup) *specs.LinuxResources {
	var r specs.LinuxResources
	if in != nil {
		r = *in
	}
	r.Devices = append(deviceRules, r.Devices...)
	return &r
}

// rlimits returns the requested rlimits (the default when nil) with
// RLIMIT_NOFILE clamped to what this host lets runc set: raising a hard limit
// above our own needs CAP_SYS_RESOURCE, and runc would fail with an obscure
// error.
func rlimits(in []specs.POSIXRlimit, h Host) []specs.POSIXRlimit {
	out := slices.Clone(in)
	if in == nil {
		out = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: DefaultNofile, Soft: DefaultNofile}}
	}
	for i := range out {
		if out[i].Type != "RLIMIT_NOFILE" || h.NofileHardLimit == 0 {
			continue
		}
		out[i].Hard = min(out[i].Hard, h.NofileHardLimit)
		out[i].Soft = min(out[i].Soft, out[i].Hard)
	}
	return out
}

func linuxNamespaces(c Container, h Host) ([]specs.LinuxNamespace, error) {
	var out []specs.LinuxNamespace
	if user := c.Namespaces.User; user != "" && user != NamespaceHost {
		// First: runc joins the user namespace before the others.
		out = append(out, specs.LinuxNamespace{Type: specs.UserNamespace, Path: user})
	}
	for _, ns := range []struct {
		typ  specs.LinuxNamespaceType
		mode string
	}{
		{specs.PIDNamespace, c.Namespaces.PID},
		{specs.IPCNamespace, c.Namespaces.IPC},
		{specs.UTSNamespace, c.Namespaces.UTS},
		{specs.MountNamespace, ""},
		{specs.NetworkNamespace, c.Namespaces.Network},
	} {
		switch {
		case ns.mode == NamespaceHost:
		case ns.mode == "" || path.IsAbs(ns.mode):
			out = append(out, specs.LinuxNamespace{Type: ns.typ, Path: ns.mode})
		default:
			return nil, fmt.Errorf("%s namespace %q: want \"\", %q or an absolute path: %w", ns.typ, ns.mode, NamespaceHost, errdefs.ErrInvalidArgument)
		}
	}
	// A cgroup namespace hides the host's hierarchy; like containerd, not
	// on v1 and not for privileged containers, which may manage cgroups.
	if h.CgroupV2 && !c.Privileged {
		out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return out, nil
}

// DefaultMaskedPaths returns docker's masked paths.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths returns docker's read-only paths.
func DefaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

func orDefault(s, def []string) []string {
	if s == nil {
		return def
	}
	return slices.Clone(s)
}

// SpecVersion is the ociVersion berth's specs declare. The runtime-spec
// module is newer (1.3.0), but Debian 12's crun 1.8 refuses versions it
// does not know, and berth uses no field added after 1.1.0.
const SpecVersion = "1.1.0"
