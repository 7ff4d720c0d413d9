package oci

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// allCapabilities lists the Linux capabilities by number (index = CAP_*
// value), up to CAP_CHECKPOINT_RESTORE (40, Linux 5.9).
var allCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities returns docker's default capability set, in docker's
// order.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// AllCapabilities returns every capability that both berth and the kernel
// (capLastCap, from /proc/sys/kernel/cap_last_cap) know, in number order.
// capLastCap 0 means every capability berth knows.
func AllCapabilities(capLastCap int) []string {
	n := len(allCapabilities)
	if capLastCap > 0 && capLastCap+1 < n {
		n = capLastCap + 1
	}
	return slices.Clone(allCapabilities[:n])
}

// capabilities computes the bounding/effective/permitted set. It follows
// docker's TweakCapabilities:
//   - privileged: every capability, add/drop ignored;
//   - "ALL" in add: every capability minus the drops;
//   - "ALL" in drop: exactly the adds;
//   - otherwise: the defaults minus the drops, plus the adds (an add wins
//     over a drop of the same capability).
//
// Unknown names are refused.
func capabilities(c Container, h Host) ([]string, error) {
	all := AllCapabilities(h.CapLastCap)
	if h.CapMask != 0 {
		// Only what berthd holds: root without CAP_SYS_RESOURCE (this
		// kind of host) cannot hand it to a privileged container.
		all = slices.DeleteFunc(all, func(name string) bool {
			n := slices.Index(allCapabilities, name)
			return n < 0 || n >= 64 || h.CapMask&(1<<n) == 0
		})
	}
	if c.Privileged {
		return all, nil
	}
	add, err := normalizeCaps(c.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps(c.CapDrop)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, cp := range all {
			if !slices.Contains(drop, cp) {
				caps = append(caps, cp)
			}
		}
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, cp := range DefaultCapabilities() {
			if !slices.Contains(drop, cp) {
				caps = append(caps, cp)
			}
		}
		caps = append(caps, add...)
	}
	// Deduplicate, keep the first occurrence; "ALL" is not a capability.
	out := []string{}
	for _, cp := range caps {
		if cp != "ALL" && !slices.Contains(out, cp) {
			out = append(out, cp)
		}
	}
	return out, nil
}

// normalizeCaps turns "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN"; "all" into "ALL".
func normalizeCaps(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, name := range in {
		cp := strings.ToUpper(strings.TrimSpace(name))
		if cp == "ALL" {
			out = append(out, cp)
			continue
		}
		if !strings.HasPrefix(cp, "CAP_") {
			cp = "CAP_" + cp
		}
		if !slices.Contains(allCapabilities, cp) {
			return nil, fmt.Errorf("unknown capability %q: %w", name, errdefs.ErrInvalidArgument)
		}
		out = append(out, cp)
	}
	return out, nil
}
