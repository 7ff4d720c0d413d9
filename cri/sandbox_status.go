package cri

import (
	"context"
	"encoding/json"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
)

// PodSandboxStatus describes a sandbox; verbose adds its record as JSON.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.sandboxes.Get(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: toSandboxStatus(sb)}
	if req.Verbose {
		info, err := json.Marshal(sb)
		if err != nil {
			return nil, fmt.Errorf("encoding the record of sandbox %s: %w", sb.ID, err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func sandboxState(sb store.Sandbox) runtimeapi.PodSandboxState {
	if sb.Ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func sandboxMetadata(sb store.Sandbox) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: sb.Name, Namespace: sb.Namespace, Uid: sb.UID, Attempt: sb.Attempt}
}

// toSandboxStatus converts a sandbox record.
func toSandboxStatus(sb store.Sandbox) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       sandboxMetadata(sb),
		State:          sandboxState(sb),
		CreatedAt:      sb.CreatedAt.UnixNano(),
		Labels:         sb.Labels,
		Annotations:    sb.Annotations,
		RuntimeHandler: sb.RuntimeHandler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux:          &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: sandboxNamespaces(sb)}},
	}
	if len(sb.IPs) > 0 {
		st.Network.Ip = sb.IPs[0]
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

// sandboxNamespaces gives the pod's namespace modes in the CRI's terms.
func sandboxNamespaces(sb store.Sandbox) *runtimeapi.NamespaceOption {
	mode := func(host bool) runtimeapi.NamespaceMode {
		if host {
			return runtimeapi.NamespaceMode_NODE
		}
		return runtimeapi.NamespaceMode_POD
	}
	o := &runtimeapi.NamespaceOption{Network: mode(sb.HostNetwork), Ipc: mode(sb.HostIPC), Pid: runtimeapi.NamespaceMode_CONTAINER}
	switch {
	case sb.HostPID:
		o.Pid = runtimeapi.NamespaceMode_NODE
	case sb.SharedPID:
		o.Pid = runtimeapi.NamespaceMode_POD
	}
	if sb.UserNS != "" {
		o.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: criIDMappings(sb.UIDMap), Gids: criIDMappings(sb.GIDMap)}
	} else {
		o.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}
	return o
}

// ListPodSandbox lists sandboxes matching the filter (id prefix, state,
// every label of the selector).
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	items, err := s.listSandboxes(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

// StreamPodSandboxes sends the same list in batches.
func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	items, err := s.listSandboxes(stream.Context(), req.Filter)
	if err != nil {
		return err
	}
	return sendBatches(items, func(b []*runtimeapi.PodSandbox) error {
		return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b})
	})
}

func (s *Server) listSandboxes(ctx context.Context, f *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	// Only the CRI's own: the kubelet kills what it did not create.
	filter := sandbox.Filter{IDPrefix: f.GetId(), Labels: f.GetLabelSelector(), Origin: store.OriginCRI, Made: true}
	if f.GetState() != nil {
		ready := f.State.State == runtimeapi.PodSandboxState_SANDBOX_READY
		filter.Ready = &ready
	}
	sbs, err := s.sandboxes.Match(ctx, filter)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.PodSandbox{}
	for _, sb := range sbs {
		items = append(items, &runtimeapi.PodSandbox{
			Id:             sb.ID,
			Metadata:       sandboxMetadata(sb),
			State:          sandboxState(sb),
			CreatedAt:      sb.CreatedAt.UnixNano(),
			Labels:         sb.Labels,
			Annotations:    sb.Annotations,
			RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return items, nil
}

func sendBatches[T any](items []T, send func([]T) error) error {
	for len(items) > 0 {
		n := min(streamBatch, len(items))
		if err := send(items[:n]); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}
