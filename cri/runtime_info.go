package cri

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/runtime/rootfs"
)

// Version answers the kubelet's handshake. The CRI's own version string is
// fixed at 0.1.0 by the API's comments.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       "berth",
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports the RuntimeReady and NetworkReady conditions, each with a
// reason and message when false.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			condition(runtimeapi.RuntimeReady, "RuntimeNotReady", s.runtimeReady),
			condition(runtimeapi.NetworkReady, "NetworkPluginNotReady", s.networkReady),
		}},
		RuntimeHandlers: s.runtimeHandlers(),
		Features:        &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		resp.Info = map[string]string{"config": s.verboseConfig(), "version": `"` + version.Version + `"`}
	}
	return resp, nil
}

// verboseConfig is berthd's config as JSON for Status's verbose info, with
// "stateDir" added under containerd's name for the directory holding the
// containers' root file systems, which tools (critest) look for.
func (s *Server) verboseConfig() string {
	b, err := json.Marshal(s.cfg.Info)
	if err != nil {
		return "{}"
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return string(b)
	}
	m["stateDir"] = s.cfg.StateDir
	b, _ = json.Marshal(m)
	return string(b)
}

func condition(typ, reason string, check Checker) *runtimeapi.RuntimeCondition {
	c := &runtimeapi.RuntimeCondition{Type: typ, Status: true}
	if check == nil {
		return c
	}
	if err := check(); err != nil {
		c.Status = false
		c.Reason = reason
		c.Message = err.Error()
	}
	return c
}

// runtimeHandlers lists the configured runtimes; the default one is also
// listed under the empty name, as the CRI asks.
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	names := s.cfg.RuntimeHandlers
	// Recursive read-only mounts and the idmapped mounts user namespaces
	// need are berth's own work (it stages them; the runtime only joins
	// the pod's user namespace), so every handler has them where the
	// kernel does.
	rro := rootfs.RecursiveReadOnlySupported()
	features := func() *runtimeapi.RuntimeHandlerFeatures {
		return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: rro, UserNamespaces: s.userns == nil}
	}
	handlers := []*runtimeapi.RuntimeHandler{{Name: "", Features: features()}}
	for _, name := range names {
		handlers = append(handlers, &runtimeapi.RuntimeHandler{Name: name, Features: features()})
	}
	return handlers
}

// RuntimeConfig names the cgroup driver explicitly: the kubelet reads an
// empty answer as systemd.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.cfg.SystemdCgroup {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}
