package remote

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Config says where images are fetched from and with which credentials. The
// daemon fills it from the [registry] section of its config; Validate
// (and NewResolver) check it.
type Config struct {
	// Mirrors maps a registry host ("docker.io", "registry.k8s.io") to
	// endpoints tried in order before the registry itself, each a URL with
	// scheme and host and no path: "http://127.0.0.1:5055",
	// "https://mirror.example:443". Repository paths are kept:
	// registry.k8s.io/pause:3.10 via http://127.0.0.1:5055 is fetched as
	// 127.0.0.1:5055/pause:3.10, and a docker.io mirror is asked for
	// "library/busybox" for official images. "index.docker.io" and
	// "registry-1.docker.io" are accepted as keys for "docker.io".
	Mirrors map[string][]string

	// Insecure lists registry hosts that may be reached over plain HTTP or
	// with a TLS certificate that is not verified: "host" (any port),
	// "host:port", or a CIDR range of IP addresses ("10.0.0.0/8"). Hosts on
	// loopback (localhost, 127.0.0.0/8, ::1) may always use plain HTTP, as
	// docker allows, but keep TLS verification unless listed here.
	Insecure []string

	// DockerConfig is the path of a docker-style config.json whose "auths"
	// (and credHelpers/credsStore, through the docker-credential-* helpers)
	// give credentials per registry host. Empty: $DOCKER_CONFIG/config.json,
	// else $HOME/.docker/config.json. A missing file means no credentials.
	// It is read at pull time, so `berth login` takes effect without a restart.
	DockerConfig string

	// UserAgent is sent to registries; empty leaves go-containerregistry's.
	UserAgent string
}

// Validate reports the first problem with c, wrapping
// errdefs.ErrInvalidArgument: malformed mirror URLs or keys, malformed
// insecure entries.
func (c Config) Validate() error {
	_, err := parseMirrors(c.Mirrors)
	if err != nil {
		return err
	}
	_, err = parseInsecure(c.Insecure)
	return err
}

// mirror is a validated Config.Mirrors endpoint.
type mirror struct {
	host      string // host[:port], lower case
	plainHTTP bool   // given as http://
}

func parseMirrors(in map[string][]string) (map[string][]mirror, error) {
	out := make(map[string][]mirror, len(in))
	for key, urls := range in {
		host := canonicalHost(key)
		if host == "" || strings.ContainsAny(host, "/@?#") || !validHostPort(host) {
			return nil, fmt.Errorf("mirrors: registry %q is not a host[:port]: %w", key, errdefs.ErrInvalidArgument)
		}
		if _, dup := out[host]; dup {
			return nil, fmt.Errorf("mirrors: registry %q is given twice: %w", key, errdefs.ErrInvalidArgument)
		}
		ms := make([]mirror, 0, len(urls))
		for _, raw := range urls {
			m, err := parseMirror(raw)
			if err != nil {
				return nil, fmt.Errorf("mirrors for %s: %w", key, err)
			}
			ms = append(ms, m)
		}
		out[host] = ms
	}
	return out, nil
}

func parseMirror(raw string) (mirror, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return mirror{}, fmt.Errorf("mirror %q: %w (%w)", raw, err, errdefs.ErrInvalidArgument)
	}
	bad := func(why string) (mirror, error) {
		return mirror{}, fmt.Errorf("mirror %q: %s: %w", raw, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad(`want an http:// or https:// URL`)
	case u.Host == "" || !validHostPort(u.Host):
		return bad("no valid host")
	case u.User != nil:
		return bad("credentials belong in the docker config, not in the URL")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		// The registry API lives at /v2/ of the host; go-containerregistry
		// cannot be told another root.
		return bad("a mirror is a host; a path, query or fragment is not supported")
	}
	return mirror{host: strings.ToLower(u.Host), plainHTTP: u.Scheme == "http"}, nil
}

// validHostPort reports whether s is host or host:port with a numeric port.
func validHostPort(s string) bool {
	u, err := url.Parse("//" + s)
	if err != nil || u.Host != s || u.Hostname() == "" {
		return false
	}
	if p := u.Port(); p != "" || strings.HasSuffix(s, ":") {
		if p == "" {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// canonicalHost lower-cases a registry host and folds Docker Hub's aliases
// into "docker.io", the spelling of imageservice/reference.
func canonicalHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

// insecureSet answers whether a host may skip TLS verification.
type insecureSet struct {
	hosts map[string]bool // "host" or "host:port"
	nets  []*net.IPNet
}

func parseInsecure(in []string) (insecureSet, error) {
	s := insecureSet{hosts: make(map[string]bool, len(in))}
	for _, e := range in {
		if _, n, err := net.ParseCIDR(e); err == nil {
			s.nets = append(s.nets, n)
			continue
		}
		h := canonicalHost(e)
		if h == "" || !validHostPort(h) {
			return insecureSet{}, fmt.Errorf("insecure registry %q is not a host, host:port or CIDR: %w", e, errdefs.ErrInvalidArgument)
		}
		s.hosts[h] = true
	}
	return s, nil
}

// contains reports whether hostport ("host" or "host:port") is listed:
// exactly, by its host alone, or by a CIDR containing its IP.
func (s insecureSet) contains(hostport string) bool {
	hostport = canonicalHost(hostport)
	if s.hosts[hostport] {
		return true
	}
	host := hostOnly(hostport)
	if s.hosts[host] {
		return true
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		for _, n := range s.nets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// hostOnly strips the port from host:port, keeping IPv6 brackets.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

// isLoopback reports whether hostport names this machine: localhost,
// 127.0.0.0/8 or ::1, with or without a port.
func isLoopback(hostport string) bool {
	host := strings.Trim(hostOnly(strings.ToLower(hostport)), "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dockerConfigPath resolves Config.DockerConfig as its doc says. It is ""
// when there is nowhere to look (a system service may have no $HOME): no
// credentials then.
func dockerConfigPath(p string) string {
	if p != "" {
		return p
	}
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	if home := os.Getenv("HOME"); home != "" {
		return filepath.Join(home, ".docker", "config.json")
	}
	return ""
}
