package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
)

// CreateContainer creates a container in a ready sandbox. The image may be
// named by ID, digest or tag. A kubelet retry of a request still in
// progress gets the same container.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	if cfg.GetMetadata().GetName() == "" {
		return nil, fmt.Errorf("container config needs metadata with a name: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("container config needs an image: %w", errdefs.ErrInvalidArgument)
	}
	if req.PodSandboxId == "" {
		return nil, fmt.Errorf("no sandbox id: %w", errdefs.ErrInvalidArgument)
	}
	sb, err := s.sandboxes.Get(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	sec := cfg.GetLinux().GetSecurityContext()
	r := runtime.CreateRequest{
		Name: cfg.Metadata.Name, Attempt: cfg.Metadata.Attempt,
		Labels: cfg.Labels, Annotations: cfg.Annotations, Origin: store.OriginCRI,
		Image: cfg.Image.Image, Sandbox: sb,
		Command: cfg.Command, Args: cfg.Args, WorkingDir: cfg.WorkingDir,
		TTY: cfg.Tty, Stdin: cfg.Stdin, StdinOnce: cfg.StdinOnce,
		Privileged: sec.GetPrivileged(), ReadonlyRootfs: sec.GetReadonlyRootfs(), NoNewPrivileges: sec.GetNoNewPrivs(),
		CapAdd: sec.GetCapabilities().GetAddCapabilities(), CapDrop: sec.GetCapabilities().GetDropCapabilities(),
		MaskedPaths: sec.GetMaskedPaths(), ROPaths: sec.GetReadonlyPaths(),
		StopSignal: stopSignal(cfg),
		HostIPC:    sec.GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE,
		User: runtime.UserRequest{
			Username:           sec.GetRunAsUsername(),
			SupplementalGroups: sec.GetSupplementalGroups(),
			StrictGroups:       sec.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict,
		},
	}
	if err := checkContainerUserNS(sec.GetNamespaceOptions().GetUsernsOptions(), sb); err != nil {
		return nil, err
	}
	if err := checkLSMs(ctx, sec, runtime.HostLSMs()); err != nil {
		return nil, err
	}
	if r.SeccompProfile, r.SeccompPath, err = seccompProfile(sec); err != nil {
		return nil, err
	}
	if sec.GetRunAsUser() != nil {
		r.User.UID = &sec.RunAsUser.Value
	}
	if sec.GetRunAsGroup() != nil {
		r.User.GID = &sec.RunAsGroup.Value
	}
	// The CRI leaves masked and read-only paths empty to mean "none" only
	// when the kubelet says so (unmasked /proc); nil keeps the defaults.
	if sec != nil && sec.MaskedPaths == nil {
		r.MaskedPaths = nil
	}
	if sec != nil && sec.ReadonlyPaths == nil {
		r.ROPaths = nil
	}
	switch sec.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_POD:
		r.PIDMode = runtime.PIDPod
	case runtimeapi.NamespaceMode_NODE:
		r.PIDMode = runtime.PIDHost
	case runtimeapi.NamespaceMode_TARGET:
		r.PIDMode, r.PIDTarget = runtime.PIDTarget, sec.GetNamespaceOptions().GetTargetId()
		if r.PIDTarget == "" {
			return nil, fmt.Errorf("PID namespace mode TARGET needs a target container id: %w", errdefs.ErrInvalidArgument)
		}
	default:
		r.PIDMode = runtime.PIDContainer
	}
	for _, kv := range cfg.Envs {
		r.Env = append(r.Env, kv.Key+"="+string(kv.Value))
	}
	if cfg.LogPath != "" {
		dir := sb.LogDirectory
		if dir == "" {
			return nil, fmt.Errorf("log_path %q given but the sandbox has no log_directory: %w", cfg.LogPath, errdefs.ErrInvalidArgument)
		}
		r.LogPath = filepath.Join(dir, cfg.LogPath)
	}
	for _, m := range cfg.Mounts {
		if img := m.GetImage().GetImage(); img != "" {
			if m.HostPath != "" {
				return nil, fmt.Errorf("mount of %s names both an image and a host path: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
			}
			// Image volumes are read-only by definition (KEP 4639).
			if !m.Readonly {
				return nil, fmt.Errorf("image volume at %s must be read-only: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
			}
			r.ImageMounts = append(r.ImageMounts, runtime.ImageMount{Image: img, Destination: m.ContainerPath, SubPath: m.ImageSubPath})
			continue
		}
		mnt, err := toMount(m)
		if err != nil {
			return nil, err
		}
		r.Mounts = append(r.Mounts, mnt)
	}
	for _, d := range cfg.Devices {
		r.Devices = append(r.Devices, oci.Device{HostPath: d.HostPath, ContainerPath: d.ContainerPath, Permissions: d.Permissions})
	}
	if res := cfg.GetLinux().GetResources(); res != nil {
		r.Resources = toResources(res)
		if res.OomScoreAdj != 0 {
			adj := int(res.OomScoreAdj)
			r.OOMScoreAdj = &adj
		}
	}
	id, err := s.containers.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// toMount translates a CRI mount. The runtime creates a host path that
// does not exist, as containerd and the kubelet's DirectoryOrCreate
// expect.
func toMount(m *runtimeapi.Mount) (oci.Mount, error) {
	if m.ContainerPath == "" || !filepath.IsAbs(m.ContainerPath) {
		return oci.Mount{}, fmt.Errorf("mount container path %q must be absolute: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
	}
	if m.HostPath == "" {
		return oci.Mount{}, fmt.Errorf("mount of %s has no host path: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
	}
	out := oci.Mount{Source: m.HostPath, Destination: m.ContainerPath, ReadOnly: m.Readonly, RecursiveReadOnly: m.RecursiveReadOnly}
	if m.RecursiveReadOnly {
		// The CRI: recursive read-only needs read-only and private
		// propagation (a propagated mount could not stay read-only).
		if !m.Readonly {
			return oci.Mount{}, fmt.Errorf("mount of %s: recursive_read_only needs readonly: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		if m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return oci.Mount{}, fmt.Errorf("mount of %s: recursive_read_only needs private propagation: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
	}
	switch m.Propagation {
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		out.Propagation = "rslave"
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		out.Propagation = "rshared"
	default:
		out.Propagation = "rprivate"
	}
	return out, nil
}

// toResources translates the CRI's container resources into OCI's.
func toResources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	out := &specs.LinuxResources{CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{}}
	if r.CpuShares != 0 {
		shares := uint64(r.CpuShares)
		out.CPU.Shares = &shares
	}
	if r.CpuQuota != 0 {
		out.CPU.Quota = &r.CpuQuota
	}
	if r.CpuPeriod != 0 {
		period := uint64(r.CpuPeriod)
		out.CPU.Period = &period
	}
	out.CPU.Cpus, out.CPU.Mems = r.CpusetCpus, r.CpusetMems
	if r.MemoryLimitInBytes != 0 {
		out.Memory.Limit = &r.MemoryLimitInBytes
	}
	if r.MemorySwapLimitInBytes != 0 {
		out.Memory.Swap = &r.MemorySwapLimitInBytes
	}
	for _, h := range r.HugepageLimits {
		out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.PageSize, Limit: h.Limit})
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
	return out
}

// toResourcesOrNil is toResources, keeping nil for "not given".
func toResourcesOrNil(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	if r == nil {
		return nil
	}
	return toResources(r)
}

// stopSignal is the container's configured stop signal, if any, as the
// runtime writes it: the CRI's SIGRTMINPLUS3 is SIGRTMIN+3.
func stopSignal(cfg *runtimeapi.ContainerConfig) string {
	if cfg.GetStopSignal() == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return ""
	}
	name := strings.TrimPrefix(cfg.GetStopSignal().String(), "SIGNAL_")
	name = strings.Replace(name, "SIGRTMINPLUS", "SIGRTMIN+", 1)
	return strings.Replace(name, "SIGRTMAXMINUS", "SIGRTMAX-", 1)
}
