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
	cfg := sandboxConfig(sb)
	resp := &runtimeapi.PodSandboxStatusResponse{Status: toSandboxStatus(sb, cfg)}
	if req.Verbose {
		// The config decoded, in place of the record's protobuf bytes.
		info, _ := json.Marshal(struct {
			store.Sandbox
			Config *runtimeapi.PodSandboxConfig `json:"config"`
		}{sb, cfg})
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

func sandboxConfig(sb store.Sandbox) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{}
	proto.Unmarshal(sb.Config, cfg)
	return cfg
}

func sandboxMetadata(sb store.Sandbox) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: sb.Name, Namespace: sb.Namespace, Uid: sb.UID, Attempt: sb.Attempt}
}

// toSandboxStatus converts sb, whose decoded config is cfg.
func toSandboxStatus(sb store.Sandbox, cfg *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxStatus {
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       sandboxMetadata(sb),
		State:          sandboxState(sb),
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
	sbs, err := s.matchingSandboxes(ctx, f.GetId(), f.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.PodSandbox{}
	for _, sb := range sbs {
		state := sandboxState(sb)
		if f.GetState() != nil && f.State.State != state {
			continue
		}
		items = append(items, &runtimeapi.PodSandbox{
			Id:             sb.ID,
			Metadata:       sandboxMetadata(sb),
			State:          state,
			CreatedAt:      sb.CreatedAt.UnixNano(),
			Labels:         sb.Labels,
			Annotations:    sb.Annotations,
			RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return items, nil
}

// matchingSandboxes returns the sandboxes whose id starts with id and
// whose labels include every label of selector (the filters' shared part).
func (s *Server) matchingSandboxes(ctx context.Context, id string, selector map[string]string) ([]store.Sandbox, error) {
	sbs, err := s.sandboxes.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Sandbox
	for _, sb := range sbs {
		if strings.HasPrefix(sb.ID, id) && labelsMatch(sb.Labels, selector) {
			out = append(out, sb)
		}
	}
	return out, nil
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
