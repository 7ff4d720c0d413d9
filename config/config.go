// Package config is berthd's TOML configuration. Every key is optional; the
// defaults are in Default and documented, key by key, in DefaultTOML, which
// `berthd config default` prints. Flags override the file.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where berthd looks for its config when --config is not given.
const DefaultPath = "/etc/berth/config.toml"

// Config is the daemon's configuration.
type Config struct {
	// Root holds persistent state: metadata, content, snapshots.
	Root string `toml:"root"`
	// State holds runtime state that dies with the machine: sockets, bundles.
	State string `toml:"state"`
	// Listen is the CRI gRPC endpoint, unix:///PATH. Empty: unix://<state>/berth.sock.
	Listen string `toml:"listen"`
	// SocketGroup is the group that owns the sockets (mode 0660). Empty: root.
	SocketGroup string `toml:"socket_group"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log_level"`
	// MetricsAddress serves Prometheus metrics on host:port when set.
	MetricsAddress string `toml:"metrics_address"`
	// CgroupDriver is cgroupfs or systemd; RuntimeConfig reports it to the kubelet.
	CgroupDriver string `toml:"cgroup_driver"`
	// DefaultRuntime names the entry of Runtimes used when a request names no handler.
	DefaultRuntime string `toml:"default_runtime"`
	// ShimPath is the berth-shim binary. Empty: beside berthd, else PATH.
	ShimPath string `toml:"shim_path"`
	// Runtimes are the OCI runtimes, by CRI runtime handler name.
	Runtimes map[string]Runtime `toml:"runtimes"`
	// Image configures pulls and image storage.
	Image Image `toml:"image"`
	// Registry configures where and how images are fetched.
	Registry Registry `toml:"registry"`
	// CNI configures the pod network.
	CNI CNI `toml:"cni"`
	// Streaming configures the exec/attach/port-forward server.
	Streaming Streaming `toml:"streaming"`
	// Docker configures the Docker Engine API door.
	Docker Docker `toml:"docker"`
}

// Docker configures the Docker Engine API door and the default network of
// its containers.
type Docker struct {
	// Listen is the Engine API endpoint, unix:///PATH. Empty:
	// unix://<state>/docker.sock.
	Listen string `toml:"listen"`
	// TCP is an extra host:port endpoint without TLS, so it must be on
	// loopback. Empty: none.
	TCP string `toml:"tcp"`
	// Bridge and Subnet shape docker's default "bridge" network, distinct
	// from the CRI's pod network.
	Bridge string `toml:"bridge"`
	Subnet string `toml:"subnet"`
}

// Streaming configures the HTTP server behind the CRI's Exec, Attach and
// PortForward URLs.
type Streaming struct {
	// Address is host:port; port 0 picks a free port. It has no
	// authentication of its own beyond the one-time tokens in its URLs,
	// so keep it on loopback unless the network is trusted.
	Address string `toml:"address"`
}

// Runtime is one OCI runtime.
type Runtime struct {
	// Path of the binary; a bare name is looked up in PATH.
	Path string `toml:"path"`
}

// Image configures pulls.
type Image struct {
	// MaxConcurrentDownloads bounds the layers fetched at once per pull.
	MaxConcurrentDownloads int `toml:"max_concurrent_downloads"`
	// SyncLayers flushes each unpacked layer to disk (syncfs) before it is
	// recorded, so a power cut cannot leave a recorded layer half written.
	SyncLayers bool `toml:"sync_layers"`
}

// Registry configures registries.
type Registry struct {
	// ConfigPath is a docker-style config.json with credentials. Empty:
	// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
	ConfigPath string `toml:"config_path"`
	// Mirrors maps a registry host to endpoints tried first, in order.
	Mirrors map[string][]string `toml:"mirrors"`
	// Insecure lists hosts reached over plain HTTP or unverified TLS.
	// Loopback hosts always may use plain HTTP.
	Insecure []string `toml:"insecure"`
}

// CNI configures the pod network.
type CNI struct {
	// ConfDir holds the network conflists; the first by name is the pod network.
	ConfDir string `toml:"conf_dir"`
	// BinDirs are searched for plugin binaries.
	BinDirs []string `toml:"bin_dirs"`
	// DefaultBridge and DefaultSubnet shape the network berthd writes to
	// ConfDir when it holds none.
	DefaultBridge string `toml:"default_bridge"`
	DefaultSubnet string `toml:"default_subnet"`
}

// Default is the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		Root:           "/var/lib/berth",
		State:          "/run/berth",
		LogLevel:       "info",
		CgroupDriver:   "cgroupfs",
		DefaultRuntime: "runc",
		Runtimes: map[string]Runtime{
			"runc": {Path: "runc"},
			"crun": {Path: "crun"},
		},
		Image: Image{MaxConcurrentDownloads: 4, SyncLayers: true},
		CNI: CNI{
			ConfDir:       "/etc/cni/net.d",
			BinDirs:       []string{"/usr/lib/cni", "/opt/cni/bin"},
			DefaultBridge: "berth0",
			DefaultSubnet: "10.89.0.0/16",
		},
		Streaming: Streaming{Address: "127.0.0.1:0"},
		Docker:    Docker{Bridge: "berth-docker0", Subnet: "10.90.0.0/16"},
	}
}

// Load reads the file at path over the defaults. A missing file at the
// default path is not an error; a missing file that was asked for is.
// Unknown keys are returned as warnings.
func Load(path string, mustExist bool) (Config, []string, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		return cfg, nil, nil
	}
	if err != nil {
		return cfg, nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data)
}

// Parse decodes TOML over the defaults.
func Parse(data []byte) (Config, []string, error) {
	cfg := Default()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return cfg, nil, fmt.Errorf("parsing config: %w", err)
	}
	var warnings []string
	for _, k := range md.Undecoded() {
		warnings = append(warnings, fmt.Sprintf("unknown config key %q ignored", k.String()))
	}
	return cfg, warnings, nil
}

// ListenPath is the filesystem path of the CRI socket.
func (c Config) ListenPath() string {
	if c.Listen == "" {
		return filepath.Join(c.State, "berth.sock")
	}
	return strings.TrimPrefix(c.Listen, "unix://")
}

// DockerListenPath is the filesystem path of the Engine API socket.
func (c Config) DockerListenPath() string {
	if c.Docker.Listen == "" {
		return filepath.Join(c.State, "docker.sock")
	}
	return strings.TrimPrefix(c.Docker.Listen, "unix://")
}

// Validate checks the configuration; warnings are worth logging, an error
// stops the daemon.
func (c Config) Validate() ([]string, error) {
	var warnings []string
	var errs []error
	if !filepath.IsAbs(c.Root) {
		errs = append(errs, fmt.Errorf("root %q must be an absolute path", c.Root))
	}
	if !filepath.IsAbs(c.State) {
		errs = append(errs, fmt.Errorf("state %q must be an absolute path", c.State))
	}
	if c.Listen != "" && (!strings.HasPrefix(c.Listen, "unix://") || !filepath.IsAbs(c.ListenPath())) {
		errs = append(errs, fmt.Errorf("listen %q must be unix:///ABSOLUTE/PATH", c.Listen))
	}
	if c.Docker.Listen != "" && (!strings.HasPrefix(c.Docker.Listen, "unix://") || !filepath.IsAbs(c.DockerListenPath())) {
		errs = append(errs, fmt.Errorf("docker.listen %q must be unix:///ABSOLUTE/PATH", c.Docker.Listen))
	}
	if c.Docker.TCP != "" {
		host, _, err := net.SplitHostPort(c.Docker.TCP)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("docker.tcp %q must be a loopback host:port: the Engine API has no TLS", c.Docker.TCP))
		}
	}
	if _, _, err := net.ParseCIDR(c.Docker.Subnet); err != nil {
		errs = append(errs, fmt.Errorf("docker.subnet: %w", err))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q is not one of debug, info, warn, error", c.LogLevel))
	}
	switch c.CgroupDriver {
	case "cgroupfs", "systemd":
	default:
		errs = append(errs, fmt.Errorf("cgroup_driver %q is not cgroupfs or systemd", c.CgroupDriver))
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		errs = append(errs, fmt.Errorf("default_runtime %q is not in [runtimes]", c.DefaultRuntime))
	}
	for name, rt := range c.Runtimes {
		if rt.Path == "" {
			errs = append(errs, fmt.Errorf("runtimes.%s.path is empty", name))
		}
	}
	if c.Image.MaxConcurrentDownloads < 1 {
		errs = append(errs, fmt.Errorf("image.max_concurrent_downloads must be at least 1, not %d", c.Image.MaxConcurrentDownloads))
	}
	if !c.Image.SyncLayers {
		warnings = append(warnings, "image.sync_layers is off: a power cut during a pull may leave a damaged layer")
	}
	if _, _, err := net.SplitHostPort(c.Streaming.Address); err != nil {
		errs = append(errs, fmt.Errorf("streaming.address %q is not host:port: %w", c.Streaming.Address, err))
	}
	if len(c.CNI.BinDirs) == 0 {
		errs = append(errs, errors.New("cni.bin_dirs is empty"))
	}
	return warnings, errors.Join(errs...)
}
