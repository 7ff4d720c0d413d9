package cri

import (
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/podfiles"
)

// RunPodSandbox creates and starts a pod sandbox. A kubelet retry of a
// request still in progress gets the same sandbox.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return nil, fmt.Errorf("sandbox config needs metadata with name, namespace and uid: %w", errdefs.ErrInvalidArgument)
	}
	raw, err := proto.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	r := sandbox.RunRequest{
		Name: md.Name, Namespace: md.Namespace, UID: md.Uid, Attempt: md.Attempt,
		Labels: cfg.Labels, Annotations: cfg.Annotations, Config: raw,
		RuntimeHandler: req.RuntimeHandler,
		Hostname:       cfg.Hostname,
		CgroupParent:   cfg.GetLinux().GetCgroupParent(),
		HostNetwork:    nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		HostIPC:        nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE,
		HostPID:        nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE,
		Sysctls:        cfg.GetLinux().GetSysctls(),
	}
	if r.UIDMap, r.GIDMap, err = s.podUserNS(nsOpts.GetUsernsOptions()); err != nil {
		return nil, err
	}
	// No hostname: the node's, as containerd and CRI-O do (the kubelet
	// always sends one, cut to 63 bytes; pod names can be longer).
	if r.Hostname == "" {
		r.Hostname, _ = os.Hostname()
	}
	if len(r.Hostname) > 64 {
		return nil, fmt.Errorf("hostname %q is longer than 64 bytes: %w", r.Hostname, errdefs.ErrInvalidArgument)
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

// StopPodSandbox kills the pod's containers and its infra process and
// detaches its network. Unknown ids succeed, as the CRI requires.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	err := s.withPodContainers(ctx, req.PodSandboxId, func(ctx context.Context, id string) error {
		return s.containers.Stop(ctx, id, 0, "")
	}, s.sandboxes.Stop)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes the pod's containers and every trace of the
// sandbox. Unknown ids succeed.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if err := s.withPodContainers(ctx, req.PodSandboxId, s.containers.Remove, s.sandboxes.Remove); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// withPodContainers applies each to every container of the sandbox id,
// then then to the sandbox. An unknown sandbox is not an error.
func (s *Server) withPodContainers(ctx context.Context, id string, each func(ctx context.Context, id string) error, then func(ctx context.Context, id string) error) error {
	if id == "" {
		return fmt.Errorf("no sandbox id: %w", errdefs.ErrInvalidArgument)
	}
	sb, err := s.sandboxes.Get(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cs, err := s.containers.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.SandboxID == sb.ID {
			if err := each(ctx, c.ID); err != nil {
				return fmt.Errorf("container %s: %w", c.ID, err)
			}
		}
	}
	return then(ctx, sb.ID)
}
