package cni

import (
	"encoding/json"
	"net"
)

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

// PodNetwork identifies one pod's attachment to one network. Callers skip
// Setup and Teardown for host-network pods.
type PodNetwork struct {
	// ID is the sandbox ID; CNI's container ID and, with Network, the key
	// of the attachment (IP leases, iptables chains, libcni's cache).
	ID string
	// Network names the network (see Manager.Network); empty means the
	// pod network.
	Network string
	// Interface is the pod-side interface of the attachment; empty means
	// IfName. Each network a pod is on needs its own (eth0, eth1, …).
	Interface string
	// Name, Namespace and UID of the pod, passed to plugins as K8S_POD_*.
	Name, Namespace, UID string
	// NetNS is the path of the pod's pinned network namespace. Teardown
	// takes an empty NetNS when the namespace is gone.
	NetNS string
	// PortMappings are published through the portmap plugin; mappings
	// without a HostPort are ignored, as the kubelet sends every container
	// port.
	PortMappings []PortMapping
	// IP asks host-local for this IPv4 address in the network (docker's
	// --ip); empty: the next free one.
	IP string
}

// Result is what Setup made.
type Result struct {
	// Network is the name of the network attached to.
	Network string
	// IPs are the pod's addresses on Interface, IPv4 first as plugins
	// report them.
	IPs []net.IP
	// Interface is the pod-side interface, "eth0" unless asked otherwise.
	Interface string
	// Raw is the network list's final CNI result (types/100 JSON), kept for
	// callers that want routes or DNS.
	Raw json.RawMessage
}
