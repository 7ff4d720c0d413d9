package cni

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// sweepTagged deletes the nat rules that plugins tagged with the comment
// name: "<network>" id: "<id>" (pkg/utils.FormatComment in the plugins
// repository) and the per-attachment chains made only of such rules.
//
// It exists for two known leaks, after which Teardown calls it:
//   - The bridge plugin (1.1.1 in Debian 12, and still upstream) learns which
//     ipMasq rules to remove from the addresses on the pod's interface, so a
//     DEL without the netns releases the lease but leaves the POSTROUTING
//     rule and the CNI-<hash> chain behind.
//   - The portmap plugin does nothing on DEL unless it is given the port
//     mappings again; with no cached ADD (a crash during Setup) and a caller
//     that no longer knows them, its CNI-DN-<hash> chain would stay.
//
// Missing iptables binaries are not an error: then no plugin made rules
// either.
func sweepTagged(ctx context.Context, network, id string) error {
	tag := fmt.Sprintf("name: %q id: %q", network, id)
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin + "-save"); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, bin+"-save", "-t", "nat").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-save: %w", bin, err))
			continue
		}
		for _, args := range sweepCommands(string(out), tag) {
			full := append([]string{"-w", "-t", "nat"}, args...)
			if out, err := exec.CommandContext(ctx, bin, full...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(full, " "), err, strings.TrimSpace(string(out))))
			}
		}
	}
	return errors.Join(errs...)
}

// sweepCommands plans the iptables calls that remove what tag marks in one
// table's iptables-save output: -D for each tagged rule in a chain it does
// not own, then -F and -X of each owned chain. A chain is owned when tagged
// rules jump to it and no untagged rule does, as with bridge's CNI-<hash>
// and portmap's CNI-DN-<hash>; shared chains (POSTROUTING,
// CNI-HOSTPORT-DNAT, CNI-HOSTPORT-SETMARK) are always reached by some
// untagged rule, so they are never flushed.
func sweepCommands(save, tag string) [][]string {
	type rule struct {
		chain  string
		args   []string // after "-A chain"
		tagged bool
	}
	var rules []rule
	for _, line := range strings.Split(save, "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		f := splitQuoted(line)
		if len(f) < 2 {
			continue
		}
		r := rule{chain: f[1], args: f[2:]}
		for i := 0; i+1 < len(r.args); i++ {
			if r.args[i] == "--comment" && strings.Contains(r.args[i+1], tag) {
				r.tagged = true
			}
		}
		rules = append(rules, r)
	}
	target := func(r rule) string {
		for i := 0; i+1 < len(r.args); i++ {
			if r.args[i] == "-j" || r.args[i] == "-g" {
				return r.args[i+1]
			}
		}
		return ""
	}
	owned := map[string]bool{}
	for _, r := range rules {
		if r.tagged && strings.HasPrefix(target(r), "CNI-") {
			owned[target(r)] = true
		}
	}
	// An untagged jump disowns its target unless it comes from an owned
	// chain (portmap's CNI-DN-<hash> holds untagged DNAT rules). Disowning
	// a chain may disown what it jumps to: repeat until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, r := range rules {
			if t := target(r); !r.tagged && !owned[r.chain] && owned[t] {
				delete(owned, t)
				changed = true
			}
		}
	}
	var cmds [][]string
	for _, r := range rules {
		if r.tagged && !owned[r.chain] {
			cmds = append(cmds, append([]string{"-D", r.chain}, r.args...))
		}
	}
	// Chains in the order iptables-save declared them, for a stable plan.
	for _, line := range strings.Split(save, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], ":") && owned[f[0][1:]] {
			cmds = append(cmds, []string{"-F", f[0][1:]}, []string{"-X", f[0][1:]})
		}
	}
	return cmds
}

// splitQuoted splits an iptables-save line into arguments: fields are
// separated by spaces, and a double-quoted field may hold spaces and
// backslash-escaped quotes and backslashes.
func splitQuoted(line string) []string {
	var (
		out     []string
		cur     strings.Builder
		inQuote bool
		have    bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote = !inQuote
			have = true
		case c == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
