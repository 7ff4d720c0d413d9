package oci

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// hostDevice is what the host says about one device node.
type hostDevice struct {
	Path         string // on the host
	Type         string // "c" or "b"
	Major, Minor int64
	Mode         fs.FileMode // permission bits
	UID, GID     uint32
}

// The only parts of Generate that read the host. Tests replace them.
var (
	// lookupDevices returns the device node at hostPath (following
	// symlinks), or every device node below it when it is a directory. A
	// path that is neither wraps errdefs.ErrInvalidArgument.
	lookupDevices = hostDevicesAt
	// allHostDevices returns the host's device nodes for privileged
	// containers.
	allHostDevices = func() ([]hostDevice, error) { return hostDevicesAt("/dev") }
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules denies every device, then allows the ones runc creates
// in every container (null zero full random urandom tty console ptmx) and
// the pty slaves, as containerd does.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(major, minor int64) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Access: "rwm"}
		if minor >= 0 {
			r.Minor = i64(minor)
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow(1, 3),    // /dev/null
		allow(1, 8),    // /dev/random
		allow(1, 7),    // /dev/full
		allow(5, 0),    // /dev/tty
		allow(1, 5),    // /dev/zero
		allow(1, 9),    // /dev/urandom
		allow(5, 1),    // /dev/console
		allow(136, -1), // /dev/pts/*
		allow(5, 2),    // /dev/ptmx
	}
}

// devices returns linux.devices and the device cgroup rules: the defaults
// plus the requested devices, or, when privileged, every host device and a
// single allow-all rule. A requested device replaces a host device at the
// same container path.
func devices(c Container) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	rules := defaultDeviceRules()
	if c.Privileged {
		rules = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		host, err := allHostDevices()
		if err != nil {
			return nil, nil, fmt.Errorf("listing host devices: %w", err)
		}
		for _, d := range host {
			devs = append(devs, linuxDevice(d, d.Path))
		}
	}
	for _, req := range c.Devices {
		perms := req.Permissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, nil, fmt.Errorf("device %s: permissions %q: want a subset of \"rwm\": %w", req.HostPath, perms, errdefs.ErrInvalidArgument)
		}
		if !path.IsAbs(req.HostPath) {
			return nil, nil, fmt.Errorf("device %q is not an absolute path: %w", req.HostPath, errdefs.ErrInvalidArgument)
		}
		ctrPath := req.ContainerPath
		if ctrPath == "" {
			ctrPath = req.HostPath
		}
		if !path.IsAbs(ctrPath) {
			return nil, nil, fmt.Errorf("device container path %q is not an absolute path: %w", ctrPath, errdefs.ErrInvalidArgument)
		}
		found, err := lookupDevices(req.HostPath)
		if err != nil {
			return nil, nil, fmt.Errorf("device %s: %w", req.HostPath, err)
		}
		for _, d := range found {
			p := ctrPath
			if d.Path != req.HostPath { // below a requested directory
				p = path.Join(ctrPath, strings.TrimPrefix(d.Path, req.HostPath))
			}
			devs = replaceDevice(devs, linuxDevice(d, p))
			if !c.Privileged {
				rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms})
			}
		}
	}
	return devs, rules, nil
}

func linuxDevice(d hostDevice, ctrPath string) specs.LinuxDevice {
	mode, uid, gid := d.Mode, d.UID, d.GID
	return specs.LinuxDevice{Path: ctrPath, Type: d.Type, Major: d.Major, Minor: d.Minor, FileMode: &mode, UID: &uid, GID: &gid}
}

func replaceDevice(devs []specs.LinuxDevice, d specs.LinuxDevice) []specs.LinuxDevice {
	for i := range devs {
		if devs[i].Path == d.Path {
			devs[i] = d
			return devs
		}
	}
	return append(devs, d)
}
