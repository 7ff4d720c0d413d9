package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/netns"
)

// IfName is the pod-side interface of an attachment that names none.
const IfName = "eth0"

// cleanupTimeout bounds the DEL that undoes a failed ADD: it runs even when
// the caller's context is done, or the half-made attachment would leak.
const cleanupTimeout = time.Minute

// Options configure a Manager.
type Options struct {
	// ConfDir holds network configs; the first by file name is the pod
	// network (see DefaultNetwork).
	ConfDir string
	// BinDirs are searched for plugin binaries, in order.
	BinDirs []string
	// CacheDir is libcni's cache of what each ADD used (config, runtime
	// args, result), which Teardown reads so it works after a restart and
	// after the config changed. Put it under berth's state (e.g.
	// /run/berth/cni) so that two daemons never share one; libcni's
	// default, /var/lib/cni, is shared by every runtime on the host.
	CacheDir string
	// Default is the network EnsureDefaultConfig writes. Its DataDir is
	// host-local's lease directory for user-defined networks too.
	Default DefaultConfig
	// NetworkDir holds the user-defined networks, NAME.conflist each. It
	// is the Manager's own, never an operator's CNI directory, so that
	// the pod network stays the first config there. Empty: CreateNetwork
	// is refused.
	NetworkDir string
	// SubnetPools are where CreateNetwork picks a subnet when the spec
	// gives none (default DefaultSubnetPools).
	SubnetPools []SubnetPool
}

// Manager attaches pods to networks through libcni and keeps the
// user-defined networks. It is safe for concurrent use by different pods;
// calls for one pod must not overlap (the sandbox manager serialises
// them).
type Manager struct {
	opts Options
	cni  *libcni.CNIConfig
	// mu serialises EnsureDefaultConfig, CreateNetwork and RemoveNetwork;
	// Setup holds it shared, so a network cannot go while a pod joins it.
	mu sync.RWMutex
}

// NewManager checks o and returns a Manager. It does not touch the disk.
func NewManager(o Options) (*Manager, error) {
	if o.ConfDir == "" {
		return nil, fmt.Errorf("CNI config directory: %w", errdefs.ErrInvalidArgument)
	}
	if len(o.BinDirs) == 0 {
		return nil, fmt.Errorf("CNI plugin directories: %w", errdefs.ErrInvalidArgument)
	}
	if o.CacheDir == "" {
		return nil, fmt.Errorf("CNI cache directory: %w", errdefs.ErrInvalidArgument)
	}
	o.Default = o.Default.withDefaults()
	if len(o.SubnetPools) == 0 {
		o.SubnetPools = DefaultSubnetPools
	}
	for _, p := range o.SubnetPools {
		if err := p.validate(); err != nil {
			return nil, err
		}
	}
	return &Manager{
		opts: o,
		cni:  libcni.NewCNIConfigWithCacheDir(o.BinDirs, o.CacheDir, nil),
	}, nil
}

// Ready reports why the pod network cannot be used, or nil: the CRI's
// NetworkReady condition.
func (m *Manager) Ready() error {
	_, err := m.defaultList()
	return err
}

// defaultList loads the pod network's list. It is read on every call so
// that a config an operator (or a CNI daemonset) drops in takes effect
// without a restart, as in containerd and CRI-O.
func (m *Manager) defaultList() (*libcni.NetworkConfigList, error) {
	list, err := DefaultNetwork(m.opts.ConfDir, m.opts.BinDirs)
	if err != nil {
		return nil, fmt.Errorf("pod network not ready: %w: %w", errdefs.ErrFailedPrecondition, err)
	}
	return list, nil
}

// Setup brings lo up in pod.NetNS and runs ADD of pod.Network's list on
// it, with interface pod.Interface. The first network a pod joins that
// has a way out (not internal) gives it its default route; the later ones
// only their own subnets, as with docker's "network connect". When ADD
// fails part way, DEL runs before the error is returned, so no lease or
// iptables rule stays behind. A pod that is already on the network, or
// whose interface is taken, gets errdefs.ErrAlreadyExists; an unknown
// network errdefs.ErrNotFound.
func (m *Manager) Setup(ctx context.Context, pod PodNetwork) (Result, error) {
	if pod.ID == "" || pod.NetNS == "" {
		return Result{}, fmt.Errorf("pod network needs an ID and a netns path: %w", errdefs.ErrInvalidArgument)
	}
	ifName, err := podInterface(pod)
	if err != nil {
		return Result{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	list, err := m.list(pod.Network)
	if err != nil {
		return Result{}, err
	}
	// A second ADD would fail on the existing interface, and the DEL
	// undoing it would cut the pod off: refuse before touching anything.
	atts, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		return Result{}, fmt.Errorf("reading CNI cache: %w", err)
	}
	for _, a := range atts {
		if a.Network == list.Name {
			return Result{}, fmt.Errorf("pod %s is attached to network %s: %w", pod.ID, a.Network, errdefs.ErrAlreadyExists)
		}
		if a.IfName == ifName {
			return Result{}, fmt.Errorf("pod %s has interface %s on network %s: %w", pod.ID, ifName, a.Network, errdefs.ErrAlreadyExists)
		}
	}
	for _, a := range atts {
		if hasDefaultRoute(a.Config) {
			if list, err = withoutDefaultRoutes(list); err != nil {
				return Result{}, fmt.Errorf("network %s: %w", list.Name, err)
			}
			break
		}
	}
	if err := loopbackUp(pod.NetNS); err != nil {
		return Result{}, fmt.Errorf("pod %s: %w", pod.ID, err)
	}
	rt := runtimeConf(pod, pod.NetNS)
	rt.IfName = ifName
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		err = fmt.Errorf("adding pod %s to network %s: %w", pod.ID, list.Name, err)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := m.del(dctx, list, rt); derr != nil {
			err = errors.Join(err, fmt.Errorf("undoing it: %w", derr))
		}
		return Result{}, err
	}
	out, err := convertResult(res, pod.NetNS, ifName)
	if err != nil {
		return Result{}, fmt.Errorf("pod %s on network %s: %w", pod.ID, list.Name, err)
	}
	out.Network = list.Name
	return out, nil
}

// podInterface is the interface pod asks for, checked.
func podInterface(pod PodNetwork) (string, error) {
	if pod.Interface == "" {
		return IfName, nil
	}
	if len(pod.Interface) > 15 || !ifNameRE.MatchString(pod.Interface) || pod.Interface == "lo" {
		return "", fmt.Errorf("interface name %q: %w", pod.Interface, errdefs.ErrInvalidArgument)
	}
	return pod.Interface, nil
}

var ifNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Attachment is one network a pod is on, as libcni's cache records it.
type Attachment struct {
	Network   string
	Interface string
}

// Attachments lists the networks pod id is on, by network name. It reads
// libcni's cache, which outlives berthd, so that a caller whose own record
// was lost can still detach everything.
func (m *Manager) Attachments(id string) ([]Attachment, error) {
	if id == "" {
		return nil, fmt.Errorf("pod network needs an ID: %w", errdefs.ErrInvalidArgument)
	}
	atts, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		return nil, fmt.Errorf("reading CNI cache: %w", err)
	}
	out := make([]Attachment, 0, len(atts))
	for _, a := range atts {
		out = append(out, Attachment{Network: a.Network, Interface: a.IfName})
	}
	return out, nil
}

// Detach takes pod off pod.Network only: the pod's other networks keep
// working. It uses what the ADD used (libcni's cache); with nothing cached
// it runs DEL of the network's current config on pod.Interface. Like
// Teardown it may be repeated, and pod.NetNS may be gone.
func (m *Manager) Detach(ctx context.Context, pod PodNetwork) error {
	if pod.ID == "" {
		return fmt.Errorf("pod network needs an ID: %w", errdefs.ErrInvalidArgument)
	}
	ifName, err := podInterface(pod)
	if err != nil {
		return err
	}
	nsPath := pod.NetNS
	if nsPath != "" && !netns.Exists(nsPath) {
		nsPath = ""
	}
	list, listErr := m.list(pod.Network)
	name := pod.Network
	if listErr == nil {
		name = list.Name
	}
	atts, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		return fmt.Errorf("reading CNI cache: %w", err)
	}
	var errs []error
	found := false
	for _, a := range atts {
		if a.Network == name {
			found = true
			errs = append(errs, m.delCached(ctx, pod, nsPath, a))
		}
	}
	if found {
		return errors.Join(errs...)
	}
	if listErr != nil {
		return listErr
	}
	rt := runtimeConf(pod, nsPath)
	rt.IfName = ifName
	return m.del(ctx, list, rt)
}

// Teardown runs DEL for every attachment of pod.ID that libcni's cache
// records, on every network, with the config, arguments and port mappings
// its ADD used (pod.Network and pod.Interface are not used); with
// nothing cached (lost cache, or a Setup interrupted before ADD finished),
// it runs DEL of the current default network. pod.NetNS may be empty or
// name a namespace that is gone: plugins then release the lease and
// iptables rules without touching interfaces. DEL of an unknown ID
// succeeds, so Teardown can be repeated.
func (m *Manager) Teardown(ctx context.Context, pod PodNetwork) error {
	if pod.ID == "" {
		return fmt.Errorf("pod network needs an ID: %w", errdefs.ErrInvalidArgument)
	}
	nsPath := pod.NetNS
	if nsPath != "" && !netns.Exists(nsPath) {
		nsPath = ""
	}
	atts, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		return fmt.Errorf("reading CNI cache: %w", err)
	}
	if len(atts) == 0 {
		list, err := m.defaultList()
		if err != nil {
			// No record of an ADD and no config to DEL with: nothing
			// this manager can release, and failing would leave the
			// sandbox unremovable.
			return nil
		}
		return m.del(ctx, list, runtimeConf(pod, nsPath))
	}
	var errs []error
	for _, a := range atts {
		errs = append(errs, m.delCached(ctx, pod, nsPath, a))
	}
	return errors.Join(errs...)
}

// delCached runs DEL of one cached attachment with the config, interface,
// arguments and port mappings its ADD used (pod's mappings when none are
// cached).
func (m *Manager) delCached(ctx context.Context, pod PodNetwork, nsPath string, a *libcni.NetworkAttachment) error {
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return fmt.Errorf("cached config of pod %s on %s: %w", pod.ID, a.Network, err)
	}
	rt := runtimeConf(pod, nsPath)
	rt.IfName = a.IfName
	if a.CniArgs != nil {
		rt.Args = a.CniArgs
	}
	if len(a.CapabilityArgs) > 0 {
		// Exactly what ADD published on this network; the caller's
		// mappings may be another network's.
		rt.CapabilityArgs = a.CapabilityArgs
	}
	return m.del(ctx, list, rt)
}

// del runs DEL of list and makes up for two gaps in what plugins clean up
// on their own:
//
//   - With no cached result (ADD failed part way, or never finished before
//     a crash), plugins get no prevResult, and the firewall plugin, which
//     learns the pod's IPs from it, would leave its CNI-FORWARD rules. The
//     addresses on the pod's interface stand in, or without a netns the
//     leases host-local holds for the ID.
//   - Without a netns, the bridge plugin releases the lease but keeps its
//     ipMasq rules; without a cached ADD, portmap does not know the port
//     mappings it should remove. Rules tagged with this attachment are
//     swept then (see sweepTagged).
func (m *Manager) del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	cached, err := m.cni.GetNetworkListCachedResult(list, rt)
	noCache := err == nil && cached == nil
	if noCache {
		var ips []net.IPNet
		if rt.NetNS != "" {
			ips = observedIPs(rt.NetNS, rt.IfName)
		}
		if len(ips) == 0 {
			ips = hostLocalLeases(list, rt.ContainerID)
		}
		if l, err := withPrevResult(list, ips); err == nil {
			list = l
		}
	}
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("removing pod %s from network %s: %w", rt.ContainerID, list.Name, err)
	}
	if rt.NetNS == "" || noCache {
		if err := sweepTagged(ctx, list.Name, rt.ContainerID); err != nil {
			return fmt.Errorf("removing leftover iptables rules of pod %s: %w", rt.ContainerID, err)
		}
	}
	return nil
}

// withPrevResult returns a copy of list whose plugins carry a prevResult
// listing ips; libcni passes a plugin's own "prevResult" through when it
// has none cached. It fails when ips is empty or the list's version
// predates prevResult on DEL.
func withPrevResult(list *libcni.NetworkConfigList, ips []net.IPNet) (*libcni.NetworkConfigList, error) {
	if len(ips) == 0 {
		return nil, errors.New("no addresses")
	}
	if ok, err := version.GreaterThanOrEqualTo(list.CNIVersion, "0.4.0"); err != nil || !ok {
		return nil, fmt.Errorf("CNI version %s has no prevResult on DEL", list.CNIVersion)
	}
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	for _, ipn := range ips {
		res.IPs = append(res.IPs, &types100.IPConfig{Address: ipn})
	}
	prev, err := res.GetAsVersion(list.CNIVersion)
	if err != nil {
		return nil, err
	}
	out := *list
	out.Plugins = make([]*libcni.PluginConfig, len(list.Plugins))
	for i, p := range list.Plugins {
		if out.Plugins[i], err = libcni.InjectConf(p, map[string]any{"prevResult": prev}); err != nil {
			return nil, err
		}
	}
	return &out, nil
}

// observedIPs returns the global addresses on ifName in the netns.
func observedIPs(nsPath, ifName string) []net.IPNet {
	var ips []net.IPNet
	netns.Do(nsPath, func() error {
		iface, err := net.InterfaceByName(ifName)
		if err != nil {
			return err
		}
		addrs, err := iface.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				ips = append(ips, *ipn)
			}
		}
		return nil
	})
	return ips
}

// hostLocalLeaseDir is host-local's default dataDir.
const hostLocalLeaseDir = "/var/lib/cni/networks"

// hostLocalLeases returns the addresses that host-local, when list's
// plugins use it, has leased to id: the files in <dataDir>/<network> that
// are named by an address and whose first line is the ID (the format
// host-local has written since 0.x; newer versions add the interface on a
// second line). It is read before DEL releases them, for when neither the
// cache nor the netns can tell the pod's addresses.
func hostLocalLeases(list *libcni.NetworkConfigList, id string) []net.IPNet {
	var ips []net.IPNet
	for _, p := range list.Plugins {
		var conf struct {
			IPAM struct {
				Type    string `json:"type"`
				DataDir string `json:"dataDir"`
			} `json:"ipam"`
		}
		if json.Unmarshal(p.Bytes, &conf) != nil || conf.IPAM.Type != "host-local" {
			continue
		}
		dir := conf.IPAM.DataDir
		if dir == "" {
			dir = hostLocalLeaseDir
		}
		dir = filepath.Join(dir, list.Name)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			ip := net.ParseIP(e.Name())
			if ip == nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.TrimSpace(first) != id {
				continue
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			} else {
				ip = ip.To4()
			}
			ips = append(ips, net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		}
	}
	return ips
}

// runtimeConf is the per-invocation part of a plugin call. The K8S_POD_*
// arguments are those the kubelet's dockershim and containerd pass; plugins
// that do not know them ignore them (IgnoreUnknown).
func runtimeConf(pod PodNetwork, nsPath string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ID,
		NetNS:       nsPath,
		IfName:      IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
			{"K8S_POD_UID", pod.UID},
		},
	}
	if pod.IP != "" {
		rt.Args = append(rt.Args, [2]string{"IP", pod.IP})
	}
	if pm := portMappings(pod.PortMappings); len(pm) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

// portMapEntry is one element of the "portMappings" capability
// (CONVENTIONS.md in the CNI spec).
type portMapEntry struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func portMappings(in []PortMapping) []portMapEntry {
	var out []portMapEntry
	for _, p := range in {
		if p.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, portMapEntry{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
	}
	return out
}

// convertResult picks the addresses of the pod's ifName out of a plugin
// result of any version.
func convertResult(res types.Result, nsPath, ifName string) (Result, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Result{}, fmt.Errorf("converting CNI result: %w", err)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return Result{}, err
	}
	out := Result{Interface: ifName, Raw: raw}
	for _, ipc := range r.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i < 0 || i >= len(r.Interfaces) {
				continue
			}
			// Addresses on the host side (a bridge's gateway) are not
			// the pod's.
			if iface := r.Interfaces[i]; iface.Sandbox == "" || iface.Name != ifName {
				continue
			}
		}
		out.IPs = append(out.IPs, ipc.Address.IP)
	}
	if len(out.IPs) == 0 {
		return Result{}, fmt.Errorf("no IP address for %s in %s", ifName, nsPath)
	}
	return out, nil
}
