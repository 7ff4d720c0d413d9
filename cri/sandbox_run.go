package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/store"
)

// RunPodSandbox creates and starts a pod sandbox. A kubelet retry of a
// request still in progress gets the same sandbox.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return nil, fmt.Errorf("sandbox config needs metadata with name, namespace and uid: %w", errdefs.ErrInvalidArgument)
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	r := sandbox.RunRequest{
		Name: md.Name, Namespace: md.Namespace, UID: md.Uid, Attempt: md.Attempt,
		Labels: cfg.Labels, Annotations: cfg.Annotations, Origin: store.OriginCRI,
		RuntimeHandler: req.RuntimeHandler,
		Hostname:       cfg.Hostname,
		LogDirectory:   cfg.LogDirectory,
		CgroupParent:   cfg.GetLinux().GetCgroupParent(),
		HostNetwork:    nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		HostIPC:        nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE,
		HostPID:        nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE,
		SharedPID:      nsOpts.GetPid() == runtimeapi.NamespaceMode_POD,
		Sysctls:        cfg.GetLinux().GetSysctls(),
		Resources:      toResourcesOrNil(cfg.GetLinux().GetResources()),
		Overhead:       toResourcesOrNil(cfg.GetLinux().GetOverhead()),
	}
	var err error
	if r.UIDMap, r.GIDMap, err = s.podUserNS(nsOpts.GetUsernsOptions()); err != nil {
		return nil, err
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		r.DNS = &podfiles.DNS{Servers: dns.Servers, Searches: dns.Searches, Options: dns.Options}
	}
	for _, p := range cfg.PortMappings {
		r.PortMappings = append(r.PortMappings, cni.PortMapping{
			HostPort: p.HostPort, ContainerPort: p.ContainerPort, HostIP: p.HostIp,
			Protocol: strings.ToLower(p.Protocol.String()),
		})
	}
	id, err := s.sandboxes.Run(ctx, r)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}
