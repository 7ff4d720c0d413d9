package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
)

// bridgeNetwork is the cni network that docker's predefined "bridge"
// stands for: a user-defined network of the cni manager (which keeps the
// predefined names for itself) on the configured bridge and subnet,
// distinct from the CRI's pod network. Server.Start makes it.
const bridgeNetwork = "berth-docker-bridge"

// Docker's predefined networks.
const (
	netBridge = network.NetworkBridge
	netHost   = network.NetworkHost
	netNone   = network.NetworkNone
)

// bridgeOptions are the options docker shows on its default bridge.
func (s *Server) bridgeOptions() map[string]string {
	return map[string]string{
		"com.docker.network.bridge.default_bridge":       "true",
		"com.docker.network.bridge.enable_icc":           "true",
		"com.docker.network.bridge.enable_ip_masquerade": "true",
		"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
		"com.docker.network.bridge.name":                 s.cfg.DefaultBridge,
		"com.docker.network.driver.mtu":                  "1500",
	}
}

func (s *Server) networkRoutes() {
	s.route("GET", "/networks", s.listNetworks)
	s.route("GET", "/networks/{id}", s.inspectNetwork)
	s.route("POST", "/networks/create", s.createNetwork)
	s.route("DELETE", "/networks/{id}", s.removeNetwork)
	s.route("POST", "/networks/{id}/connect", s.connectNetwork)
	s.route("POST", "/networks/{id}/disconnect", s.disconnectNetwork)
	s.route("POST", "/networks/prune", s.pruneNetworks)
}

// dockerNetwork is a network as the docker door shows it: a cni network
// under its docker name, or host/none, which have none.
type dockerNetwork struct {
	cni.Network
	// CNI is the cni network's name ("" for host and none).
	CNI string
}

// predefined reports whether n is bridge, host or none.
func (n dockerNetwork) predefined() bool {
	return n.Name == netBridge || n.Name == netHost || n.Name == netNone
}

// stableID is the ID of a network berth does not record (host, none).
func stableID(name string) string {
	sum := sha256.Sum256([]byte("berth docker network " + name))
	return hex.EncodeToString(sum[:])
}

// ensureBridge makes docker's default bridge network if it is missing.
func (s *Server) ensureBridge(ctx context.Context) error {
	if s.networks == nil {
		return nil
	}
	_, err := s.networks.Network(bridgeNetwork)
	if err == nil || !errdefs.IsNotFound(err) {
		return err
	}
	n, err := s.networks.CreateNetwork(ctx, cni.NetworkSpec{
		Name: bridgeNetwork, Subnet: s.cfg.DefaultSubnet, Bridge: s.cfg.DefaultBridge, Options: s.bridgeOptions(),
	})
	if err != nil {
		return fmt.Errorf("creating docker's bridge network: %w", err)
	}
	s.log.Info("created docker's bridge network", "bridge", n.Bridge, "subnet", n.Subnet)
	return nil
}

// dockerNetworks lists bridge, host, none, then the user-defined
// networks by name. The CRI's pod network is not docker's and not shown.
func (s *Server) dockerNetworks(ctx context.Context) ([]dockerNetwork, error) {
	var out []dockerNetwork
	var users []dockerNetwork
	if s.networks != nil {
		all, err := s.networks.ListNetworks(ctx)
		if err != nil {
			return nil, err
		}
		for _, n := range all {
			switch {
			case n.Default:
			case n.Name == bridgeNetwork:
				d := dockerNetwork{Network: n, CNI: n.Name}
				d.Name = netBridge
				out = append(out, d)
			default:
				users = append(users, dockerNetwork{Network: n, CNI: n.Name})
			}
		}
	}
	for _, name := range []string{netHost, netNone} {
		out = append(out, dockerNetwork{Network: cni.Network{ID: stableID(name), Name: name, Driver: name, Created: s.started.UTC()}})
	}
	return append(out, users...), nil
}

// findNetwork resolves a docker network reference as docker does: a
// name, a full ID, else a unique ID prefix. Unknown: docker's "network X
// not found" (404).
func (s *Server) findNetwork(ctx context.Context, ref string) (dockerNetwork, error) {
	all, err := s.dockerNetworks(ctx)
	if err != nil {
		return dockerNetwork{}, err
	}
	for _, n := range all {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	var found []dockerNetwork
	for _, n := range all {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return dockerNetwork{}, errorf(errdefs.ErrNotFound, "network %s not found", ref)
	}
	return dockerNetwork{}, errorf(errdefs.ErrInvalidArgument, "network %s is ambiguous (%d matches found based on ID prefix)", ref, len(found))
}

// cniNetwork is the cni.Manager network a docker network reference (name
// or ID) stands for, for a sandbox to be made on: "bridge" is berth's
// docker bridge ("" — the pod network — where it could not be made).
// host and none have none ("", the caller handles them); an unknown
// network wraps errdefs.ErrNotFound.
func (s *Server) cniNetwork(ref string) (string, error) {
	n, err := s.findNetwork(context.Background(), ref)
	if err != nil && ref == netBridge {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return n.CNI, nil
}

// dockerNetworkName is the docker name of a cni network a sandbox
// records ("" is the pod network, which docker shows as bridge).
func dockerNetworkName(cniName string) string {
	if cniName == "" || cniName == bridgeNetwork {
		return netBridge
	}
	return cniName
}

// endpoint is one docker container's attachment to a network.
type endpoint struct {
	Container store.Container
	Sandbox   store.Sandbox
	// Network is the cni network; Interface the pod's side.
	Network, Interface string
	IPs                []string
	Aliases            []string
}

// endpoints lists the attachments of running docker-side containers
// (their sandboxes' first network and those connected later), the
// source of network inspect, network rm's check and the DNS answers.
func (s *Server) endpoints(ctx context.Context) ([]endpoint, error) {
	sbs, err := s.pods.Match(ctx, sandbox.Filter{Origin: store.OriginDocker})
	if err != nil {
		return nil, err
	}
	cs, err := s.containers.List(ctx)
	if err != nil {
		return nil, err
	}
	bySandbox := map[string]store.Container{}
	for _, c := range cs {
		if c.Origin == store.OriginDocker && runtime.StateOf(c) == runtime.Running {
			bySandbox[c.SandboxID] = c
		}
	}
	var out []endpoint
	for _, sb := range sbs {
		c, ok := bySandbox[sb.ID]
		if !ok || !sb.Ready() || sb.HostNetwork || sb.NoNetwork {
			continue
		}
		if !sb.NetworkDetached {
			out = append(out, endpoint{Container: c, Sandbox: sb, Network: sb.Network, Interface: cni.IfName, IPs: sb.IPs, Aliases: sb.Aliases})
		}
		for _, a := range sb.Networks {
			out = append(out, endpoint{Container: c, Sandbox: sb, Network: a.Network, Interface: a.Interface, IPs: a.IPs, Aliases: a.Aliases})
		}
	}
	return out, nil
}

// onNetwork keeps the endpoints on the cni network name ("" and the
// docker bridge are one to docker).
func onNetwork(eps []endpoint, cniName string) []endpoint {
	var out []endpoint
	for _, ep := range eps {
		if ep.Network == cniName || dockerNetworkName(ep.Network) == dockerNetworkName(cniName) {
			out = append(out, ep)
		}
	}
	return out
}

// networkView is n in docker's schema, with its containers when eps is
// not nil.
func (s *Server) networkView(n dockerNetwork, eps []endpoint) network.Inspect {
	v := network.Inspect{Network: network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: true,
		IPAM:     network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
		Internal: n.Internal, Options: n.Options, Labels: n.Labels,
	}}
	if n.Name == netHost || n.Name == netNone {
		v.EnableIPv4 = false
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		v.IPAM.Config = append(v.IPAM.Config, network.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange})
	}
	if eps != nil {
		v.Containers = map[string]network.EndpointResource{}
		for _, ep := range onNetwork(eps, n.CNI) {
			res := network.EndpointResource{Name: ep.Container.Key, EndpointID: endpointID(ep)}
			for _, a := range ep.IPs {
				if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() && n.Subnet.IsValid() {
					res.IPv4Address = netip.PrefixFrom(ip, n.Subnet.Bits())
					break
				}
			}
			v.Containers[ep.Container.ID] = res
		}
	}
	return v
}

// endpointID is stable for an attachment: its sandbox and network.
func endpointID(ep endpoint) string {
	sum := sha256.Sum256([]byte(ep.Sandbox.ID + "/" + ep.Network))
	return hex.EncodeToString(sum[:])
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "name", "id", "label", "label!", "driver", "type", "dangling", "scope")
	if err != nil {
		return err
	}
	dangling, err := danglingFilter(f)
	if err != nil {
		return err
	}
	for _, t := range f["type"] {
		if t != "custom" && t != "builtin" {
			return errorf(errdefs.ErrInvalidArgument, "invalid filter: 'type'='%s'", t)
		}
	}
	all, err := s.dockerNetworks(r.Context())
	if err != nil {
		return err
	}
	eps, err := s.endpoints(r.Context())
	if err != nil {
		return err
	}
	out := []network.Inspect{}
	for _, n := range all {
		typ := "custom"
		if n.predefined() {
			typ = "builtin"
		}
		if !regexpMatch(f, "name", n.Name) || !fuzzyMatch(f, "id", n.ID) || !f.Match("driver", n.Driver) ||
			!f.Match("type", typ) || !f.Match("scope", "local") || !f.MatchLabels("label", n.Labels) {
			continue
		}
		if dangling != nil {
			// docker: dangling are the custom networks no container uses.
			unused := !n.predefined() && len(onNetwork(eps, n.CNI)) == 0
			if *dangling != unused {
				continue
			}
		}
		v := s.networkView(n, eps)
		if !versionBefore(r, "1.28") {
			// docker lists no containers since API 1.28.
			v.Containers = map[string]network.EndpointResource{}
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.findNetwork(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	eps, err := s.endpoints(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.networkView(n, eps))
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return errorf(errdefs.ErrInvalidArgument, "network name must not be empty")
	}
	if req.Name == netBridge || req.Name == netHost || req.Name == netNone || req.Name == network.NetworkDefault {
		return errorf(errdefs.ErrPermissionDenied, "operation is not permitted on predefined %s network ", req.Name)
	}
	switch req.Driver {
	case "", "bridge":
	case "host", "null", "overlay", "macvlan", "ipvlan":
		return errorf(errdefs.ErrNotImplemented, "network driver %q is not supported by berth (only bridge)", req.Driver)
	default:
		return errorf(errdefs.ErrNotFound, "plugin %q not found", req.Driver)
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return errorf(errdefs.ErrNotImplemented, "IPv6 networks are not supported by berth")
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress || req.Scope == "swarm" || req.Scope == "global" {
		return errorf(errdefs.ErrNotImplemented, "swarm and config-only networks are not supported by berth")
	}
	if _, err := s.findNetwork(r.Context(), req.Name); err == nil {
		return errorf(errdefs.ErrConflict, "network with name %s already exists", req.Name)
	}
	spec := cni.NetworkSpec{Name: req.Name, Driver: "bridge", Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return errorf(errdefs.ErrNotFound, "plugin %q not found", req.IPAM.Driver)
		}
		switch len(req.IPAM.Config) {
		case 0:
		case 1:
			c := req.IPAM.Config[0]
			if !c.Subnet.IsValid() && (c.IPRange.IsValid() || c.Gateway.IsValid()) {
				return errorf(errdefs.ErrInvalidArgument, "every ip-range or gateway must have a corresponding subnet")
			}
			if c.Subnet.IsValid() {
				spec.Subnet = c.Subnet.String()
			}
			if c.Gateway.IsValid() {
				spec.Gateway = c.Gateway.String()
			}
			if c.IPRange.IsValid() {
				spec.IPRange = c.IPRange.String()
			}
		default:
			return errorf(errdefs.ErrNotImplemented, "berth networks have one subnet")
		}
	}
	if b := req.Options["com.docker.network.bridge.name"]; b != "" {
		spec.Bridge = b
	}
	n, err := s.networks.CreateNetwork(r.Context(), spec)
	switch {
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return errorf(errdefs.ErrConflict, "network with name %s already exists", req.Name)
	case errors.Is(err, errdefs.ErrConflict) && strings.Contains(err.Error(), "overlaps"):
		return errorf(errdefs.ErrPermissionDenied, "Pool overlaps with other one on this address space")
	case err != nil:
		return err
	}
	s.startDNS(n)
	s.emit("network", "create", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID, Warning: ""})
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.findNetwork(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.removeNetworkObject(r.Context(), n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeNetworkObject(ctx context.Context, n dockerNetwork) error {
	if n.predefined() {
		return errorf(errdefs.ErrPermissionDenied, "%s is a pre-defined network and cannot be removed", n.Name)
	}
	eps, err := s.endpoints(ctx)
	if err != nil {
		return err
	}
	if len(onNetwork(eps, n.CNI)) > 0 {
		return errorf(errdefs.ErrConflict, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
	}
	if err := s.networks.RemoveNetwork(ctx, n.CNI); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			// Attached pods of stopped containers, in libcni's cache.
			return errorf(errdefs.ErrConflict, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
		}
		return err
	}
	s.stopDNS(n.CNI)
	s.emit("network", "destroy", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return nil
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "label", "label!", "until")
	if err != nil {
		return err
	}
	var until time.Time
	if v := f["until"]; len(v) > 0 {
		if until, err = eventTime(v[0], time.Now()); err != nil {
			return errorf(errdefs.ErrInvalidArgument, "invalid filter 'until=%s'", v[0])
		}
	}
	all, err := s.dockerNetworks(r.Context())
	if err != nil {
		return err
	}
	eps, err := s.endpoints(r.Context())
	if err != nil {
		return err
	}
	report := network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range all {
		if n.predefined() || len(onNetwork(eps, n.CNI)) > 0 || !f.MatchLabels("label", n.Labels) ||
			!until.IsZero() && !n.Created.Before(until) {
			continue
		}
		if err := s.removeNetworkObject(r.Context(), n); err != nil {
			s.log.Debug("prune: keeping a network", "network", n.Name, "error", err)
			continue
		}
		report.NetworksDeleted = append(report.NetworksDeleted, n.Name)
	}
	sort.Strings(report.NetworksDeleted)
	s.emit("network", "prune", "", map[string]string{})
	return writeJSON(w, http.StatusOK, report)
}

func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	n, err := s.findNetwork(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), req.Container)
	if err != nil {
		return err
	}
	sb, err := s.pods.Get(r.Context(), c.SandboxID)
	if err != nil {
		return err
	}
	if n.Name == netHost || n.Name == netNone || sb.HostNetwork || sb.NoNetwork {
		return errorf(errdefs.ErrPermissionDenied, "container cannot be disconnected from host network or connected to host network")
	}
	if dockerNetworkName(sb.Network) == n.Name && !sb.NetworkDetached || slices.ContainsFunc(sb.Networks, func(a store.NetworkAttachment) bool { return a.Network == n.CNI }) {
		return errorf(errdefs.ErrPermissionDenied, "endpoint with name %s already exists in network %s", c.Key, n.Name)
	}
	if !sb.Ready() {
		// The sandbox outlives its container's stops; only a removed
		// container's is gone.
		return errorf(errdefs.ErrConflict, "container %s is being removed", c.ID)
	}
	creq := sandbox.ConnectRequest{Network: n.CNI}
	if dockerNetworkName(sb.Network) == n.Name {
		creq.Network = sb.Network // back onto the first network
	}
	if ep := req.EndpointConfig; ep != nil {
		creq.Aliases = ep.Aliases
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
			if n.Name == netBridge {
				return errorf(errdefs.ErrInvalidArgument, "user specified IP address is supported on user defined networks only")
			}
			creq.IP = ep.IPAMConfig.IPv4Address.String()
		}
	}
	if _, err := s.pods.Connect(r.Context(), sb.ID, creq); err != nil {
		return err
	}
	s.emit("network", "connect", n.ID, map[string]string{"name": n.Name, "container": c.ID, "type": "bridge"})
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	n, err := s.findNetwork(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), req.Container)
	if err != nil {
		return err
	}
	sb, err := s.pods.Get(r.Context(), c.SandboxID)
	if err != nil {
		return err
	}
	if n.Name == netHost || n.Name == netNone || sb.HostNetwork || sb.NoNetwork {
		return errorf(errdefs.ErrPermissionDenied, "container cannot be disconnected from host network or connected to host network")
	}
	first := dockerNetworkName(sb.Network) == n.Name && !sb.NetworkDetached
	if !first && !slices.ContainsFunc(sb.Networks, func(a store.NetworkAttachment) bool { return a.Network == n.CNI }) {
		return errorf(errdefs.ErrPermissionDenied, "container %s is not connected to network %s", c.ID, n.Name)
	}
	target := n.CNI
	if first {
		// The sandbox's own name for it ("" when docker's bridge fell
		// back to the pod network).
		target = sb.Network
	}
	if err := s.pods.Disconnect(r.Context(), sb.ID, target); err != nil {
		return err
	}
	s.emit("network", "disconnect", n.ID, map[string]string{"name": n.Name, "container": c.ID, "type": "bridge"})
	w.WriteHeader(http.StatusOK)
	return nil
}

// planNetwork completes a create plan's sandbox for its network from the
// request's endpoint settings: the aliases and the address asked for
// (--network-alias, --ip; user-defined networks only, as in docker), and
// the resolver: berth's DNS server of a user-defined network (dnsFor)
// unless the request names DNS servers of its own.
func (s *Server) planNetwork(plan *createPlan, nc *network.NetworkingConfig) error {
	if plan.Network == "" {
		return nil
	}
	n, err := s.findNetwork(context.Background(), plan.Network)
	if err != nil {
		return errorf(errdefs.ErrNotFound, "network %s not found", plan.Network)
	}
	if nc != nil {
		for key, ep := range nc.EndpointsConfig {
			if ep == nil || key != n.Name && key != n.ID && !strings.HasPrefix(n.ID, key) {
				continue
			}
			if n.predefined() && len(ep.Aliases) > 0 {
				return errorf(errdefs.ErrInvalidArgument, "network-scoped alias is supported only for containers in user defined networks")
			}
			plan.Sandbox.Aliases = append(plan.Sandbox.Aliases, ep.Aliases...)
			if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
				if n.predefined() {
					return errorf(errdefs.ErrInvalidArgument, "user specified IP address is supported on user defined networks only")
				}
				if !n.Subnet.Contains(ep.IPAMConfig.IPv4Address) {
					return errorf(errdefs.ErrInvalidArgument, "no configured subnet or ip-range contain the IP address %s", ep.IPAMConfig.IPv4Address)
				}
				plan.Sandbox.IP = ep.IPAMConfig.IPv4Address.String()
			}
		}
	}
	if d := plan.Sandbox.DNS; d == nil || len(d.Servers) == 0 {
		if own := s.dnsFor(n.Name); own != nil {
			if d != nil {
				own.Searches = append(d.Searches, own.Searches...)
				own.Options = append(d.Options, own.Options...)
			}
			plan.Sandbox.DNS = own
		}
	}
	return nil
}
