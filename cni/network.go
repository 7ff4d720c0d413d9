package cni

import (
	"context"
	"encoding/json"
	"net"
)

// Network is what the sandbox manager needs from the pod network. *Manager
// implements it; cnitest.Network is a fake for unit tests. (Go lets the
// consumer declare its own copy; this one keeps Manager and the fake in
// step.)
type Network interface {
	// Setup attaches the pod's network namespace to the pod network.
	Setup(ctx context.Context, pod PodNetwork) (Result, error)
	// Teardown detaches it and releases its addresses and port mappings.
	Teardown(ctx context.Context, pod PodNetwork) error
	// Ready reports why the pod network cannot be used, or nil.
	Ready() error
}

var _ Network = (*Manager)(nil)

// PortMapping publishes ContainerPort of the pod on HostPort of the host, as
// the portmap plugin's "portMappings" capability takes it.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	// Protocol is "tcp" (the default when empty), "udp" or "sctp".
	Protocol string
	// HostIP limits the mapping to one host address; empty means all.
	HostIP string
}

// PodNetwork identifies one pod's attachment. Callers skip Setup and
// Teardown for host-network pods.
type PodNetwork struct {
	// ID is the sandbox ID; CNI's container ID and the key of the
	// attachment (IP leases, iptables chains, libcni's cache).
	ID string
	// Name, Namespace and UID of the pod, passed to plugins as K8S_POD_*.
	Name, Namespace, UID string
	// NetNS is the path of the pod's pinned network namespace. Teardown
	// takes an empty NetNS when the namespace is gone.
	NetNS string
	// PortMappings are published through the portmap plugin; mappings
	// without a HostPort are ignored, as the kubelet sends every container
	// port.
	PortMappings []PortMapping
}

// Result is what Setup made.
type Result struct {
	// IPs are the pod's addresses on Interface, IPv4 first as plugins
	// report them.
	IPs []net.IP
	// Interface is the pod-side interface, "eth0".
	Interface string
	// Raw is the network list's final CNI result (types/100 JSON), kept for
	// callers that want routes or DNS.
	Raw json.RawMessage
}
