// Package podfiles writes the /etc/hostname, /etc/hosts and /etc/resolv.conf
// that a pod's containers bind-mount. Contents are built by pure functions
// (tested without root); files are replaced atomically, so a container
// starting while berthd rewrites one never reads a torn file.
package podfiles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// perm is the mode of the files: containers running as any user read them.
const perm = 0o644

// WriteHostname writes hostname followed by a newline to path.
func WriteHostname(path, hostname string) error {
	if hostname == "" {
		return fmt.Errorf("hostname: %w", errdefs.ErrInvalidArgument)
	}
	return atomicfile.WriteFile(path, []byte(hostname+"\n"), perm)
}

// WriteHosts writes an /etc/hosts for a pod to path: the same localhost and
// IPv6 lines the kubelet (pkg/kubelet/kubelet_pods.go, managedHostsHeader)
// and containerd write, then "<ip>\t<hostname>" for every pod IP, then
// the extra entries ("name:ip", see ExtraHosts).
func WriteHosts(path, hostname string, podIPs []string, extra ...string) error {
	data, err := Hosts(hostname, podIPs)
	if err != nil {
		return err
	}
	more, err := ExtraHosts(extra)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, more...), perm)
}

// ExtraHosts are the /etc/hosts lines of docker's --add-host entries,
// "name:ip" each ("ip\tname"); an entry without a name or a valid IP
// wraps errdefs.ErrInvalidArgument with docker's message.
func ExtraHosts(entries []string) ([]byte, error) {
	var b bytes.Buffer
	for _, e := range entries {
		name, ip, ok := strings.Cut(e, ":")
		if !ok {
			name, ip, ok = strings.Cut(e, "=")
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if _, err := netip.ParseAddr(ip); !ok || name == "" || err != nil {
			return nil, fmt.Errorf("invalid IP address in add-host: %q: %w", ip, errdefs.ErrInvalidArgument)
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return b.Bytes(), nil
}

// Hosts is the content WriteHosts writes.
func Hosts(hostname string, podIPs []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if ip == "" {
			continue
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("pod IP %q: %w", ip, errdefs.ErrInvalidArgument)
		}
		if hostname == "" {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.Bytes(), nil
}

// DNS is a pod's DNS configuration, as in the CRI's DNSConfig and docker's
// --dns, --dns-search and --dns-option.
type DNS struct {
	Servers  []string
	Searches []string
	Options  []string
}

// empty reports whether d sets nothing, so the host's settings apply.
func (d *DNS) empty() bool {
	return d == nil || len(d.Servers)+len(d.Searches)+len(d.Options) == 0
}

// WriteResolvConf writes path from dns. When dns sets nothing, it copies the
// host's resolv.conf at hostResolvConf (usually /etc/resolv.conf) instead,
// dropping loopback nameservers (127.0.0.0/8, ::1): they point at a
// resolver on the host's loopback (systemd-resolved, dnsmasq) that is
// unreachable from the pod's namespace. Like docker (libnetwork's
// resolvconf.FilterResolvDNS), no default servers are added when none
// remain: the file then has no nameserver and the resolver's built-in
// default applies.
func WriteResolvConf(path string, dns *DNS, hostResolvConf string) error {
	var data []byte
	if dns.empty() {
		host, err := os.ReadFile(hostResolvConf)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading host resolv.conf: %w", err)
		}
		data = FilterHostResolvConf(host)
	} else {
		var err error
		if data, err = ResolvConf(dns); err != nil {
			return err
		}
	}
	return atomicfile.WriteFile(path, data, perm)
}

// ResolvConf is the resolv.conf for dns: nameserver lines, then one search
// and one options line, as the kubelet writes them.
func ResolvConf(dns *DNS) ([]byte, error) {
	var b bytes.Buffer
	for _, s := range dns.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("DNS server %q: %w", s, errdefs.ErrInvalidArgument)
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if err := writeWords(&b, "search", dns.Searches); err != nil {
		return nil, err
	}
	if err := writeWords(&b, "options", dns.Options); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeWords(b *bytes.Buffer, key string, words []string) error {
	if len(words) == 0 {
		return nil
	}
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\r\n") {
			return fmt.Errorf("DNS %s %q: %w", key, w, errdefs.ErrInvalidArgument)
		}
	}
	fmt.Fprintf(b, "%s %s\n", key, strings.Join(words, " "))
	return nil
}

// FilterHostResolvConf returns the host's resolv.conf without its loopback
// nameserver lines; every other line, comments included, is kept.
func FilterHostResolvConf(host []byte) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" && isLoopback(f[1]) {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func isLoopback(s string) bool {
	// A nameserver may carry a zone ("fe80::1%eth0"); netip handles that.
	a, err := netip.ParseAddr(s)
	return err == nil && a.Unmap().IsLoopback()
}
