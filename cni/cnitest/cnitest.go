// Package cnitest is a hand-written fake of cni.Network for unit tests of
// the sandbox manager and the CRI server: no plugins, no root.
package cnitest

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Network records attachments in memory and hands out addresses from
// 10.89.0.0/16 (the default network's range) in order. Set the Err fields
// to make the next calls fail; they stay set until cleared. The zero value
// is ready to use.
type Network struct {
	mu sync.Mutex
	// SetupErr, TeardownErr and ReadyErr, when set, are returned by the
	// corresponding method, which then changes nothing.
	SetupErr, TeardownErr, ReadyErr error
	// SetupHook, when set, runs at the start of Setup (after SetupErr),
	// e.g. to block or to cancel a context; its error is returned.
	SetupHook func(ctx context.Context, pod cni.PodNetwork) error

	next     uint32
	attached map[string]Attachment
	setups   []cni.PodNetwork
	downs    []cni.PodNetwork
}

var _ cni.Network = (*Network)(nil)

// Attachment is one pod Setup attached and Teardown has not yet detached.
type Attachment struct {
	Pod cni.PodNetwork
	IP  net.IP
}

// Setup attaches pod and returns the next free address. Setting up an
// attached ID again fails with errdefs.ErrAlreadyExists, which a real
// plugin would not report but which catches double Setups in tests.
func (n *Network) Setup(ctx context.Context, pod cni.PodNetwork) (cni.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.setups = append(n.setups, pod)
	if n.SetupErr != nil {
		return cni.Result{}, n.SetupErr
	}
	if n.SetupHook != nil {
		if err := n.SetupHook(ctx, pod); err != nil {
			return cni.Result{}, err
		}
	}
	if pod.ID == "" || pod.NetNS == "" {
		return cni.Result{}, fmt.Errorf("pod network needs an ID and a netns path: %w", errdefs.ErrInvalidArgument)
	}
	if _, ok := n.attached[pod.ID]; ok {
		return cni.Result{}, fmt.Errorf("pod %s already attached: %w", pod.ID, errdefs.ErrAlreadyExists)
	}
	if n.attached == nil {
		n.attached = map[string]Attachment{}
	}
	n.next++
	ip := net.IPv4(10, 89, byte(n.next>>8), byte(n.next)).To4()
	n.attached[pod.ID] = Attachment{Pod: pod, IP: ip}
	return cni.Result{
		IPs:       []net.IP{ip},
		Interface: cni.IfName,
		Raw:       []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","ips":[{"address":"%s/16"}]}`, ip)),
	}, nil
}

// Teardown detaches pod.ID; an unknown ID succeeds, as with CNI's DEL.
func (n *Network) Teardown(ctx context.Context, pod cni.PodNetwork) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.downs = append(n.downs, pod)
	if n.TeardownErr != nil {
		return n.TeardownErr
	}
	delete(n.attached, pod.ID)
	return nil
}

// Ready returns ReadyErr.
func (n *Network) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ReadyErr
}

// SetErrors sets the injected errors under the fake's lock, for tests
// that change them while other goroutines call the fake.
func (n *Network) SetErrors(setup, teardown, ready error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.SetupErr, n.TeardownErr, n.ReadyErr = setup, teardown, ready
}

// Attached returns the current attachment of id.
func (n *Network) Attached(id string) (Attachment, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.attached[id]
	return a, ok
}

// Len is the number of current attachments: zero after a test that leaks
// nothing.
func (n *Network) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.attached)
}

// Calls returns every Setup and Teardown call so far, failed ones included.
func (n *Network) Calls() (setups, teardowns []cni.PodNetwork) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]cni.PodNetwork(nil), n.setups...), append([]cni.PodNetwork(nil), n.downs...)
}
