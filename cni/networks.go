package cni

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idgen"
)

// Network is a network pods can join: the pod network or a user-defined
// one. A user-defined network is stored as its conflist, with this record
// under the conflist's "berth" key (libcni ignores keys it does not know),
// so the file that plugins read and the record can never disagree.
type Network struct {
	// ID is docker's network ID, 64 hex digits. The pod network's is the
	// SHA-256 of its name, so that it is stable across restarts.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Driver is "bridge" for user-defined networks; for the pod network,
	// the type of its first plugin.
	Driver string `json:"driver"`
	// Subnet and Gateway are the IPv4 range and the bridge's address.
	// Either is zero for a pod network whose config does not say.
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Bridge is the host's bridge device, "br-<12 hex of ID>" for
	// user-defined networks, as docker names them.
	Bridge string `json:"bridge"`
	// Internal networks have no route out of their subnet: the bridge gets
	// no address, pods no default route, nothing is masqueraded and no
	// port is published.
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created,omitzero"`
	// IPRange is the part of Subnet that pods get addresses from
	// (docker's --ip-range); zero: all of it.
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	// Options are the driver options the network was created with
	// (docker's -o), recorded for inspect.
	Options map[string]string `json:"options,omitempty"`
	// Default marks the pod network: it belongs to the operator's CNI
	// directory, and RemoveNetwork refuses it.
	Default bool `json:"-"`
}

// NetworkSpec is what "docker network create" asks for.
type NetworkSpec struct {
	// Name: letters, digits, "_", "." and "-", starting with a letter or
	// digit, at most MaxNetworkName bytes; not one of docker's predefined
	// names (bridge, host, none) nor the pod network's.
	Name string
	// Driver is "bridge" (the default when empty), the only one.
	Driver string
	// Subnet is an IPv4 CIDR; empty picks a free one from the manager's
	// SubnetPools, clear of every network's subnet and the host's routes.
	Subnet string
	// Gateway is the bridge's address in Subnet; empty takes the first.
	Gateway  string
	Internal bool
	Labels   map[string]string
	// IPRange is an IPv4 CIDR inside Subnet to hand addresses out of;
	// it needs Subnet.
	IPRange string
	// Bridge names the host's bridge; empty: "br-<12 hex of ID>". At
	// most 15 bytes, and no other network's.
	Bridge string
	// Options are recorded with the network (Network.Options).
	Options map[string]string
}

// MaxNetworkName bounds network names: they end up in iptables comments
// (at most 256 bytes, with the pod ID) and host-local's lease paths.
const MaxNetworkName = 128

var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// reservedNames are docker's predefined networks, which the docker door
// maps onto the pod network or no network at all.
var reservedNames = map[string]bool{"bridge": true, "host": true, "none": true, "default": true}

// conflistExt is the extension of a user-defined network's file.
const conflistExt = ".conflist"

// Network finds a network by name, full ID or unique ID prefix, as docker
// does. An unknown one wraps errdefs.ErrNotFound; an ambiguous prefix
// errdefs.ErrInvalidArgument.
func (m *Manager) Network(name string) (Network, error) {
	if name == "" {
		return Network{}, fmt.Errorf("empty network name: %w", errdefs.ErrInvalidArgument)
	}
	if list, err := m.defaultList(); err == nil && list.Name == name {
		return describeDefault(list), nil
	}
	if validNetworkName(name) == nil {
		n, _, err := m.userNetwork(name)
		if !errdefs.IsNotFound(err) {
			return n, err
		}
	}
	all, err := m.ListNetworks(context.Background())
	if err != nil {
		return Network{}, err
	}
	var found []Network
	for _, n := range all {
		if n.ID == name {
			return n, nil
		}
		if strings.HasPrefix(n.ID, name) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return Network{}, fmt.Errorf("network %q: %w", name, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return Network{}, fmt.Errorf("network ID prefix %q matches %d networks: %w", name, len(found), errdefs.ErrInvalidArgument)
}

// ListNetworks returns the pod network (when its config loads) and then
// the user-defined networks by name. A user-defined network's file that
// does not load is left out rather than failing the listing.
func (m *Manager) ListNetworks(ctx context.Context) ([]Network, error) {
	var out []Network
	if list, err := m.defaultList(); err == nil {
		out = append(out, describeDefault(list))
	}
	if m.opts.NetworkDir == "" {
		return out, nil
	}
	files, err := libcni.ConfFiles(m.opts.NetworkDir, []string{conflistExt})
	if err != nil {
		return nil, fmt.Errorf("reading network directory %s: %w", m.opts.NetworkDir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		n, _, err := m.userNetwork(strings.TrimSuffix(filepath.Base(f), conflistExt))
		if err == nil && (len(out) == 0 || !out[0].Default || n.Name != out[0].Name) {
			out = append(out, n)
		}
	}
	return out, nil
}

// CreateNetwork records a user-defined bridge network. Nothing is made on
// the host until a pod joins it: the bridge plugin creates the bridge at
// the first ADD. The conflist is written atomically, so a crash leaves the
// network whole or absent. Bad input wraps errdefs.ErrInvalidArgument, a
// name in use errdefs.ErrAlreadyExists, a subnet overlapping another
// network's errdefs.ErrConflict, and no free subnet in the pools
// errdefs.ErrFailedPrecondition; then nothing is written.
func (m *Manager) CreateNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	if m.opts.NetworkDir == "" {
		return Network{}, fmt.Errorf("this manager has no directory for user-defined networks: %w", errdefs.ErrFailedPrecondition)
	}
	if d := m.opts.Default.DataDir; d == "" || !filepath.IsAbs(d) {
		return Network{}, fmt.Errorf("IPAM data dir %q must be absolute: %w", d, errdefs.ErrInvalidArgument)
	}
	if err := validNetworkName(spec.Name); err != nil {
		return Network{}, err
	}
	if reservedNames[spec.Name] {
		return Network{}, fmt.Errorf("network name %q is predefined: %w", spec.Name, errdefs.ErrInvalidArgument)
	}
	if spec.Driver != "" && spec.Driver != "bridge" {
		return Network{}, fmt.Errorf("network driver %q: only bridge is supported: %w", spec.Driver, errdefs.ErrInvalidArgument)
	}
	subnet, gateway, err := parseSubnet(spec.Subnet, spec.Gateway)
	if err != nil {
		return Network{}, err
	}
	var ipRange netip.Prefix
	if spec.IPRange != "" {
		ipRange, err = netip.ParsePrefix(spec.IPRange)
		if err != nil || !subnet.IsValid() || !ipRange.Addr().Is4() || ipRange.Bits() < subnet.Bits() || !subnet.Contains(ipRange.Addr()) || ipRange.Bits() > 31 {
			return Network{}, fmt.Errorf("ip range %q: an IPv4 CIDR inside the subnet is needed: %w", spec.IPRange, errdefs.ErrInvalidArgument)
		}
		ipRange = ipRange.Masked()
	}
	if spec.Bridge != "" {
		if _, err := podInterface(PodNetwork{Interface: spec.Bridge}); err != nil {
			return Network{}, fmt.Errorf("bridge name %q: %w", spec.Bridge, errdefs.ErrInvalidArgument)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	existing, err := m.ListNetworks(ctx)
	if err != nil {
		return Network{}, err
	}
	path := m.networkFile(spec.Name)
	if _, err := os.Lstat(path); err == nil {
		return Network{}, fmt.Errorf("network %q: %w", spec.Name, errdefs.ErrAlreadyExists)
	}
	bridges := map[string]bool{m.opts.Default.Bridge: true}
	var used []netip.Prefix
	owner := map[netip.Prefix]string{}
	for _, n := range existing {
		if n.Name == spec.Name {
			return Network{}, fmt.Errorf("network %q: %w", spec.Name, errdefs.ErrAlreadyExists)
		}
		if spec.Bridge != "" && n.Bridge == spec.Bridge {
			return Network{}, fmt.Errorf("bridge %s is network %q's: %w", spec.Bridge, n.Name, errdefs.ErrConflict)
		}
		bridges[n.Bridge] = true
		if n.Subnet.IsValid() {
			used = append(used, n.Subnet)
			owner[n.Subnet] = n.Name
		}
	}
	if list, err := m.defaultList(); err == nil {
		for _, p := range listSubnets(list) {
			used = append(used, p)
			owner[p] = list.Name
		}
	}
	if subnet.IsValid() {
		for _, p := range used {
			if p.Overlaps(subnet) {
				return Network{}, fmt.Errorf("subnet %s overlaps %s of network %q: %w", subnet, p, owner[p], errdefs.ErrConflict)
			}
		}
	} else {
		host, err := hostPrefixes()
		if err != nil {
			return Network{}, err
		}
		var ok bool
		if subnet, ok = allocateSubnet(m.opts.SubnetPools, append(used, host...)); !ok {
			return Network{}, fmt.Errorf("no free subnet left in the pools %v: %w", m.opts.SubnetPools, errdefs.ErrFailedPrecondition)
		}
		gateway = subnet.Addr().Next()
	}

	n := Network{
		Name: spec.Name, Driver: "bridge", Subnet: subnet, Gateway: gateway, Internal: spec.Internal,
		Labels: maps.Clone(spec.Labels), Created: time.Now().UTC(), IPRange: ipRange, Options: maps.Clone(spec.Options),
	}
	for n.ID == "" || spec.Bridge == "" && bridges[n.Bridge] {
		n.ID = idgen.New()
		n.Bridge = "br-" + n.ID[:12]
	}
	if spec.Bridge != "" {
		n.Bridge = spec.Bridge
	}
	data, err := n.conflist(m.opts.BinDirs, m.opts.Default.DataDir)
	if err != nil {
		return Network{}, err
	}
	if _, err := libcni.NetworkConfFromBytes(data); err != nil {
		return Network{}, fmt.Errorf("network %q config: %w", n.Name, err)
	}
	if err := os.MkdirAll(m.opts.NetworkDir, 0o755); err != nil {
		return Network{}, fmt.Errorf("creating network directory: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return Network{}, fmt.Errorf("writing network %q: %w", n.Name, err)
	}
	return n, nil
}

// RemoveNetwork removes a user-defined network: its bridge, its file and
// host-local's lease directory for it. A network that pods are still on
// (in libcni's cache) is refused with errdefs.ErrConflict, the pod network
// with errdefs.ErrFailedPrecondition; an unknown name wraps
// errdefs.ErrNotFound. The bridge goes first: a crash before the file
// goes leaves a network whose bridge the next ADD makes again.
func (m *Manager) RemoveNetwork(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.Network(name)
	if err != nil {
		return err
	}
	if n.Default {
		return fmt.Errorf("network %q is the pod network: %w", n.Name, errdefs.ErrFailedPrecondition)
	}
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return fmt.Errorf("reading CNI cache: %w", err)
	}
	var pods []string
	for _, a := range atts {
		if a.Network == n.Name {
			pods = append(pods, a.ContainerID)
		}
	}
	if len(pods) > 0 {
		return fmt.Errorf("network %q has %d attached pod(s) (%s): %w", n.Name, len(pods), strings.Join(pods, ", "), errdefs.ErrConflict)
	}
	if err := deleteBridge(n.Bridge); err != nil {
		return fmt.Errorf("removing network %q: %w", n.Name, err)
	}
	if err := os.Remove(m.networkFile(n.Name)); err != nil {
		return fmt.Errorf("removing network %q: %w", n.Name, err)
	}
	if err := atomicfile.SyncDir(m.opts.NetworkDir); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(m.opts.Default.DataDir, n.Name)); err != nil {
		return fmt.Errorf("removing the leases of network %q: %w", n.Name, err)
	}
	return nil
}

// list loads the network list of name: the pod network for "" or its
// name, else a user-defined network. An unknown name wraps
// errdefs.ErrNotFound.
func (m *Manager) list(name string) (*libcni.NetworkConfigList, error) {
	def, defErr := m.defaultList()
	if name == "" || (defErr == nil && def.Name == name) {
		return def, defErr
	}
	if err := validNetworkName(name); err != nil {
		return nil, fmt.Errorf("network %q: %w", name, errdefs.ErrNotFound)
	}
	_, list, err := m.userNetwork(name)
	return list, err
}

func (m *Manager) networkFile(name string) string {
	return filepath.Join(m.opts.NetworkDir, name+conflistExt)
}

// userNetwork loads a user-defined network by name (already checked with
// validNetworkName).
func (m *Manager) userNetwork(name string) (Network, *libcni.NetworkConfigList, error) {
	if m.opts.NetworkDir == "" {
		return Network{}, nil, fmt.Errorf("network %q: %w", name, errdefs.ErrNotFound)
	}
	data, err := os.ReadFile(m.networkFile(name))
	if errors.Is(err, os.ErrNotExist) {
		return Network{}, nil, fmt.Errorf("network %q: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return Network{}, nil, err
	}
	var f struct {
		Berth *Network `json:"berth"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Berth == nil || f.Berth.Name != name {
		return Network{}, nil, fmt.Errorf("network file %s is not berth's (%v): %w", m.networkFile(name), err, errdefs.ErrDataLoss)
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return Network{}, nil, fmt.Errorf("network file %s: %w: %w", m.networkFile(name), err, errdefs.ErrDataLoss)
	}
	return *f.Berth, list, nil
}

func validNetworkName(name string) error {
	if len(name) > MaxNetworkName || !networkNameRE.MatchString(name) {
		return fmt.Errorf("network name %q: letters, digits, _ . - only, starting with a letter or digit, at most %d bytes: %w",
			name, MaxNetworkName, errdefs.ErrInvalidArgument)
	}
	return nil
}

// parseSubnet checks a spec's subnet and gateway. Both empty: zero values
// (allocate). A gateway needs a subnet and must be a host address in it.
func parseSubnet(subnet, gateway string) (netip.Prefix, netip.Addr, error) {
	if subnet == "" {
		if gateway != "" {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("gateway %s without a subnet: %w", gateway, errdefs.ErrInvalidArgument)
		}
		return netip.Prefix{}, netip.Addr{}, nil
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("subnet %q: an IPv4 CIDR is needed: %w", subnet, errdefs.ErrInvalidArgument)
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("subnet %s leaves no room for pods: %w", p, errdefs.ErrInvalidArgument)
	}
	p = p.Masked()
	if gateway == "" {
		return p, p.Addr().Next(), nil
	}
	gw, err := netip.ParseAddr(gateway)
	if err != nil || !p.Contains(gw) || gw == p.Addr() || gw == lastAddr(p) {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("gateway %q: a host address in %s is needed: %w", gateway, p, errdefs.ErrInvalidArgument)
	}
	return p, gw, nil
}

// conflist renders a user-defined network: a bridge with host-local IPAM
// (leases under dataDir/<name>), then portmap unless internal, and
// firewall, when their binaries are in binDirs.
func (n Network) conflist(binDirs []string, dataDir string) ([]byte, error) {
	rng := obj{"subnet": n.Subnet.String(), "gateway": n.Gateway.String()}
	if n.IPRange.IsValid() {
		// host-local skips the gateway inside the range by itself.
		first := n.IPRange.Addr()
		if first == n.Subnet.Addr() {
			first = first.Next()
		}
		last := lastAddr(n.IPRange)
		if last == lastAddr(n.Subnet) {
			last = last.Prev()
		}
		rng["rangeStart"], rng["rangeEnd"] = first.String(), last.String()
	}
	ipam := obj{
		"type":    "host-local",
		"ranges":  [][]obj{{rng}},
		"dataDir": dataDir,
	}
	if !n.Internal {
		ipam["routes"] = []obj{{"dst": "0.0.0.0/0"}}
	}
	return bridgeConflist(n.Name, obj{
		"type":        "bridge",
		"bridge":      n.Bridge,
		"isGateway":   !n.Internal,
		"ipMasq":      !n.Internal,
		"hairpinMode": true,
		"ipam":        ipam,
	}, !n.Internal, binDirs, obj{"berth": n})
}

// pluginConf is the part of a bridge-like plugin's config that describes
// the network.
type pluginConf struct {
	Type      string `json:"type"`
	Bridge    string `json:"bridge"`
	IsGateway bool   `json:"isGateway"`
	IPAM      struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
		Ranges  [][]struct {
			Subnet  string `json:"subnet"`
			Gateway string `json:"gateway"`
		} `json:"ranges"`
	} `json:"ipam"`
}

// describeDefault describes the pod network from its config, as far as
// the config says.
func describeDefault(list *libcni.NetworkConfigList) Network {
	sum := sha256.Sum256([]byte(list.Name))
	n := Network{ID: hex.EncodeToString(sum[:]), Name: list.Name, Default: true}
	if len(list.Plugins) == 0 {
		return n
	}
	var c pluginConf
	json.Unmarshal(list.Plugins[0].Bytes, &c)
	n.Driver, n.Bridge, n.Internal = c.Type, c.Bridge, false
	gw := c.IPAM.Gateway
	for _, set := range c.IPAM.Ranges {
		for _, r := range set {
			if p, err := netip.ParsePrefix(r.Subnet); err == nil && p.Addr().Is4() && !n.Subnet.IsValid() {
				n.Subnet, gw = p.Masked(), r.Gateway
			}
		}
	}
	if p, err := netip.ParsePrefix(c.IPAM.Subnet); err == nil && !n.Subnet.IsValid() {
		n.Subnet = p.Masked()
	}
	if a, err := netip.ParseAddr(gw); err == nil {
		n.Gateway = a
	} else if n.Subnet.IsValid() {
		n.Gateway = n.Subnet.Addr().Next()
	}
	return n
}

// listSubnets returns every subnet list's plugins hand out.
func listSubnets(list *libcni.NetworkConfigList) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list.Plugins {
		var c pluginConf
		if json.Unmarshal(p.Bytes, &c) != nil {
			continue
		}
		subnets := []string{c.IPAM.Subnet}
		for _, set := range c.IPAM.Ranges {
			for _, r := range set {
				subnets = append(subnets, r.Subnet)
			}
		}
		for _, s := range subnets {
			if pfx, err := netip.ParsePrefix(s); err == nil {
				out = append(out, pfx.Masked())
			}
		}
	}
	return out
}

// withoutDefaultRoutes returns list without the default routes its
// plugins' IPAM would install, for a pod that another network already
// routes: the first network with a way out routes everything else.
func withoutDefaultRoutes(list *libcni.NetworkConfigList) (*libcni.NetworkConfigList, error) {
	data, changed, err := stripDefaultRoutes(list.Bytes)
	if err != nil || !changed {
		return list, err
	}
	return libcni.NetworkConfFromBytes(data)
}

// hasDefaultRoute reports whether a network list (as bytes, as libcni
// caches it) gives its pods a default route.
func hasDefaultRoute(conf []byte) bool {
	_, changed, err := stripDefaultRoutes(conf)
	return err == nil && changed
}

// stripDefaultRoutes removes the 0.0.0.0/0 and ::/0 routes from the IPAM
// of a network list's plugins, and reports whether there were any.
func stripDefaultRoutes(conf []byte) ([]byte, bool, error) {
	dec := json.NewDecoder(strings.NewReader(string(conf)))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, false, err
	}
	plugins, _ := raw["plugins"].([]any)
	changed := false
	for _, p := range plugins {
		pm, _ := p.(map[string]any)
		ipam, _ := pm["ipam"].(map[string]any)
		routes, ok := ipam["routes"].([]any)
		if !ok {
			continue
		}
		kept := []any{}
		for _, r := range routes {
			if rm, _ := r.(map[string]any); rm["dst"] == "0.0.0.0/0" || rm["dst"] == "::/0" {
				changed = true
				continue
			}
			kept = append(kept, r)
		}
		ipam["routes"] = kept
	}
	if !changed {
		return conf, false, nil
	}
	data, err := json.Marshal(raw)
	return data, true, err
}
