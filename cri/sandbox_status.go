package cri

import (
	"context"
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/store"
)

// PodSandboxStatus describes a sandbox; verbose adds the record as JSON.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.sandboxes.Get(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	st := s.toSandboxStatus(ctx, sb)
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.Verbose {
		info, _ := json.Marshal(struct {
			store.Sandbox
			Config any `json:"config,omitempty"`
		}{Sandbox: sb})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (s *Server) sandboxState(ctx context.Context, sb store.Sandbox) runtimeapi.PodSandboxState {
	if sb.Ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func sandboxConfig(sb store.Sandbox) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{}
	proto.Unmarshal(sb.Config, cfg)
	return cfg
}

func (s *Server) toSandboxStatus(ctx context.Context, sb store.Sandbox) *runtimeapi.PodSandboxStatus {
	cfg := sandboxConfig(sb)
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       &runtimeapi.PodSandboxMetadata{Name: sb.Name, Namespace: sb.Namespace, Uid: sb.UID, Attempt: sb.Attempt},
		State:          s.sandboxState(ctx, sb),
		CreatedAt:      sb.CreatedAt.UnixNano(),
		Labels:         sb.Labels,
		Annotations:    sb.Annotations,
		RuntimeHandler: sb.RuntimeHandler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: nsOpts.GetNetwork(), Pid: nsOpts.GetPid(), Ipc: nsOpts.GetIpc(), TargetId: nsOpts.GetTargetId(),
			UsernsOptions: nsOpts.GetUsernsOptions(),
		}}},
	}
	if len(sb.IPs) > 0 {
		st.Network.Ip = sb.IPs[0]
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
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
	sbs, err := s.sandboxes.List(ctx)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.PodSandbox{}
	for _, sb := range sbs {
		state := s.sandboxState(ctx, sb)
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(sb.ID, f.Id) {
				continue
			}
			if f.State != nil && f.State.State != state {
				continue
			}
			if !labelsMatch(sb.Labels, f.LabelSelector) {
				continue
			}
		}
		items = append(items, &runtimeapi.PodSandbox{
			Id:             sb.ID,
			Metadata:       &runtimeapi.PodSandboxMetadata{Name: sb.Name, Namespace: sb.Namespace, Uid: sb.UID, Attempt: sb.Attempt},
			State:          state,
			CreatedAt:      sb.CreatedAt.UnixNano(),
			Labels:         sb.Labels,
			Annotations:    sb.Annotations,
			RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return items, nil
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
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
