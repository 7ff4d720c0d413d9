package sandbox

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/sandbox/podfiles"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// ConnectRequest attaches a running pod to one more network.
type ConnectRequest struct {
	// Network names it (cni.Manager.Network); empty is the pod network.
	Network string
	// Aliases are the pod's further names on it.
	Aliases []string
	// IP is the address asked for on it (docker's --ip); empty: any.
	IP string
}

// Connect attaches the ready pod id to another network (docker's "network
// connect" of a running container) on its next free interface (eth1,
// eth2, …) and records the attachment. Its other networks are untouched.
// A pod already on the network gets errdefs.ErrAlreadyExists; a stopped
// or host-network pod errdefs.ErrFailedPrecondition. Should berthd die
// between the CNI ADD and the record, stopping the pod still detaches it:
// Teardown works from libcni's cache, which lists every attachment.
func (m *Manager) Connect(ctx context.Context, id string, req ConnectRequest) (store.NetworkAttachment, error) {
	sb, err := m.Get(ctx, id)
	if err != nil {
		return store.NetworkAttachment{}, err
	}
	unlock := m.lock(sb.ID)
	defer unlock()
	if sb, err = m.Get(ctx, sb.ID); err != nil {
		return store.NetworkAttachment{}, err
	}
	switch {
	case !sb.Ready():
		return store.NetworkAttachment{}, fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	case sb.HostNetwork:
		return store.NetworkAttachment{}, fmt.Errorf("sandbox %s uses the host's network: %w", sb.ID, errdefs.ErrFailedPrecondition)
	case sb.Network == req.Network && sb.NetworkDetached:
		return m.reattach(ctx, sb, req)
	case sb.Network == req.Network || slices.ContainsFunc(sb.Networks, func(a store.NetworkAttachment) bool { return a.Network == req.Network }):
		return store.NetworkAttachment{}, fmt.Errorf("sandbox %s is already on network %q: %w", sb.ID, req.Network, errdefs.ErrAlreadyExists)
	}
	pod := podNetwork(sb, nil)
	pod.Network, pod.Interface, pod.IP = req.Network, nextInterface(sb), req.IP
	res, err := m.net.Setup(ctx, pod)
	if err != nil {
		return store.NetworkAttachment{}, fmt.Errorf("attaching sandbox %s to network %q: %w", sb.ID, req.Network, err)
	}
	att := store.NetworkAttachment{Network: req.Network, Interface: res.Interface, Aliases: req.Aliases}
	for _, ip := range res.IPs {
		att.IPs = append(att.IPs, ip.String())
	}
	if _, err := m.update(sb.ID, func(s *store.Sandbox) { s.Networks = append(s.Networks, att) }); err != nil {
		// Not recorded: not attached either.
		if derr := m.net.Detach(context.WithoutCancel(ctx), pod); derr != nil {
			m.log.Error("detaching a network that could not be recorded", "sandbox", sb.ID, "network", req.Network, "error", derr)
		}
		return store.NetworkAttachment{}, err
	}
	return att, nil
}

// Disconnect takes the pod id off a network Connect attached it to; its
// other networks keep working. A pod not on the network gets
// errdefs.ErrNotFound; the network the pod was made on stays (its eth0
// carries the pod's addresses and port mappings), errdefs.ErrFailedPrecondition.
func (m *Manager) Disconnect(ctx context.Context, id, network string) error {
	sb, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	unlock := m.lock(sb.ID)
	defer unlock()
	if sb, err = m.Get(ctx, sb.ID); err != nil {
		return err
	}
	i := slices.IndexFunc(sb.Networks, func(a store.NetworkAttachment) bool { return a.Network == network })
	if i < 0 {
		if sb.Network == network && !sb.HostNetwork && !sb.NoNetwork && !sb.NetworkDetached {
			return m.detachFirst(ctx, sb)
		}
		return fmt.Errorf("sandbox %s is not on network %q: %w", sb.ID, network, errdefs.ErrNotFound)
	}
	pod := podNetwork(sb, nil)
	pod.Network, pod.Interface = network, sb.Networks[i].Interface
	if err := m.net.Detach(ctx, pod); err != nil {
		return fmt.Errorf("detaching sandbox %s from network %q: %w", sb.ID, network, err)
	}
	_, err = m.update(sb.ID, func(s *store.Sandbox) {
		s.Networks = slices.DeleteFunc(s.Networks, func(a store.NetworkAttachment) bool { return a.Network == network })
	})
	return err
}

// nextInterface is the first ethN (N ≥ 1) none of the pod's attachments
// uses; eth0 is the network the pod was made on.
func nextInterface(sb store.Sandbox) string {
	for n := 1; ; n++ {
		name := "eth" + strconv.Itoa(n)
		if !slices.ContainsFunc(sb.Networks, func(a store.NetworkAttachment) bool { return a.Interface == name }) {
			return name
		}
	}
}

// detachFirst takes the pod off the network it was made on (its eth0),
// as docker's disconnect does with a container's first network (compose
// 1.29 disconnects and connects each container it creates, with its
// aliases). The record keeps the network, marked detached, so that
// Connect puts eth0 back with the pod's port mappings. Called locked.
func (m *Manager) detachFirst(ctx context.Context, sb store.Sandbox) error {
	pod := podNetwork(sb, nil)
	pod.Interface = cni.IfName
	if err := m.net.Detach(ctx, pod); err != nil {
		return fmt.Errorf("detaching sandbox %s from network %q: %w", sb.ID, sb.Network, err)
	}
	_, err := m.update(sb.ID, func(s *store.Sandbox) { s.NetworkDetached, s.IPs, s.Aliases = true, nil, nil })
	return err
}

// reattach puts a pod that detachFirst took off its first network back
// on it, on eth0 with its port mappings; its addresses (which may differ)
// go into the record and its hosts file. Called locked.
func (m *Manager) reattach(ctx context.Context, sb store.Sandbox, req ConnectRequest) (store.NetworkAttachment, error) {
	var ports []cni.PortMapping
	for _, p := range sb.PortMappings {
		ports = append(ports, cni.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP})
	}
	pod := podNetwork(sb, ports)
	pod.Interface, pod.IP = cni.IfName, req.IP
	res, err := m.net.Setup(ctx, pod)
	if err != nil {
		return store.NetworkAttachment{}, fmt.Errorf("attaching sandbox %s to network %q: %w", sb.ID, req.Network, err)
	}
	att := store.NetworkAttachment{Network: req.Network, Interface: res.Interface, Aliases: req.Aliases}
	for _, ip := range res.IPs {
		att.IPs = append(att.IPs, ip.String())
	}
	if _, err := m.update(sb.ID, func(s *store.Sandbox) { s.NetworkDetached, s.IPs, s.Aliases = false, att.IPs, req.Aliases }); err != nil {
		if derr := m.net.Detach(context.WithoutCancel(ctx), pod); derr != nil {
			m.log.Error("detaching a network that could not be recorded", "sandbox", sb.ID, "network", req.Network, "error", derr)
		}
		return store.NetworkAttachment{}, err
	}
	if sb.Dir == "" {
		return att, nil
	}
	if err := podfiles.WriteHosts(filepath.Join(sb.Dir, "hosts"), sb.Hostname, att.IPs, sb.ExtraHosts...); err != nil {
		m.log.Warn("rewriting the hosts file after a reattach", "sandbox", sb.ID, "error", err)
	}
	return att, nil
}
