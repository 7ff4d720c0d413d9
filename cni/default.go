package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Defaults of the network EnsureDefaultConfig writes.
const (
	DefaultNetworkName = "berth"
	DefaultBridge      = "berth0"
	DefaultSubnet      = "10.89.0.0/16"
	// DefaultConfFile is the file name, in ConfDir, of the written config.
	DefaultConfFile = "10-berth.conflist"
	// defaultCNIVersion is the newest version Debian 12's plugins (1.1.1)
	// speak; libcni and newer plugins speak it too.
	defaultCNIVersion = "1.0.0"
)

// DefaultConfig describes the network EnsureDefaultConfig writes. Zero
// fields take the Default* constants; tests set their own bridge and
// subnet so they never touch a real daemon's.
type DefaultConfig struct {
	Name   string
	Bridge string
	Subnet string
	// DataDir is host-local's lease directory. It belongs in berth's state,
	// not host-local's shared /var/lib/cni/networks, so that two daemons
	// (or berth and another runtime) never hand out each other's leases.
	// Required.
	DataDir string
}

func (d DefaultConfig) withDefaults() DefaultConfig {
	if d.Name == "" {
		d.Name = DefaultNetworkName
	}
	if d.Bridge == "" {
		d.Bridge = DefaultBridge
	}
	if d.Subnet == "" {
		d.Subnet = DefaultSubnet
	}
	return d
}

func (d DefaultConfig) validate() error {
	if _, err := netip.ParsePrefix(d.Subnet); err != nil {
		return fmt.Errorf("default network subnet %q: %w", d.Subnet, errdefs.ErrInvalidArgument)
	}
	if len(d.Bridge) > 15 {
		return fmt.Errorf("bridge name %q longer than 15 bytes: %w", d.Bridge, errdefs.ErrInvalidArgument)
	}
	if d.DataDir == "" || !filepath.IsAbs(d.DataDir) {
		return fmt.Errorf("IPAM data dir %q must be absolute: %w", d.DataDir, errdefs.ErrInvalidArgument)
	}
	return nil
}

// conflist renders the default network: a bridge with host-local IPAM, then
// portmap and firewall when their binaries are in binDirs. There is no
// loopback plugin: Setup brings lo up itself.
func (d DefaultConfig) conflist(binDirs []string) ([]byte, error) {
	return bridgeConflist(d.Name, obj{
		"type":        "bridge",
		"bridge":      d.Bridge,
		"isGateway":   true,
		"ipMasq":      true,
		"hairpinMode": true,
		"ipam": obj{
			"type":    "host-local",
			"ranges":  [][]obj{{{"subnet": d.Subnet}}},
			"routes":  []obj{{"dst": "0.0.0.0/0"}},
			"dataDir": d.DataDir,
		},
	}, true, binDirs, nil)
}

// obj is a JSON object of a CNI config.
type obj = map[string]any

// bridgeConflist is a network list of the bridge plugin config given, then
// portmap (when publish) and firewall when their binaries are in binDirs;
// extra keys go into the list's top level.
func bridgeConflist(name string, bridge obj, publish bool, binDirs []string, extra obj) ([]byte, error) {
	plugins := []obj{bridge}
	if publish && findPlugin("portmap", binDirs) {
		plugins = append(plugins, obj{"type": "portmap", "capabilities": obj{"portMappings": true}})
	}
	if findPlugin("firewall", binDirs) {
		plugins = append(plugins, obj{"type": "firewall"})
	}
	list := obj{"cniVersion": defaultCNIVersion, "name": name, "plugins": plugins}
	for k, v := range extra {
		list[k] = v
	}
	return json.MarshalIndent(list, "", "  ")
}

// EnsureDefaultConfig writes the default network (see DefaultConfig) into
// ConfDir as DefaultConfFile when ConfDir holds no network config at all,
// valid or not: an operator's file, even a broken one, is never shadowed.
// It reports whether it wrote one.
func (m *Manager) EnsureDefaultConfig() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	files, err := libcni.ConfFiles(m.opts.ConfDir, Extensions)
	if err != nil {
		return false, fmt.Errorf("reading CNI config directory %s: %w", m.opts.ConfDir, err)
	}
	if len(files) > 0 {
		return false, nil
	}
	d := m.opts.Default
	if err := d.validate(); err != nil {
		return false, err
	}
	data, err := d.conflist(m.opts.BinDirs)
	if err != nil {
		return false, err
	}
	// Fail here, not at the first pod, if libcni would not load it.
	if _, err := libcni.NetworkConfFromBytes(data); err != nil {
		return false, fmt.Errorf("default network config: %w", err)
	}
	if err := os.MkdirAll(m.opts.ConfDir, 0o755); err != nil {
		return false, fmt.Errorf("creating CNI config directory: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(m.opts.ConfDir, DefaultConfFile), data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}
