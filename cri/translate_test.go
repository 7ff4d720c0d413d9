package cri

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/store"
)

// The CRI → service translation of RunPodSandbox and CreateContainer,
// through the handlers, with fakes that record what the services are
// asked: no root, no runtime.

// fakePods records Run requests and knows one sandbox.
type fakePods struct {
	Pods
	runs []sandbox.RunRequest
	sb   store.Sandbox
}

func (f *fakePods) Run(_ context.Context, r sandbox.RunRequest) (string, error) {
	f.runs = append(f.runs, r)
	return "pod-id", nil
}

func (f *fakePods) Get(_ context.Context, id string) (store.Sandbox, error) {
	if id != f.sb.ID {
		return store.Sandbox{}, fmt.Errorf("sandbox %q: %w", id, errdefs.ErrNotFound)
	}
	return f.sb, nil
}

// fakeContainers records Create requests.
type fakeContainers struct {
	Containers
	creates []runtime.CreateRequest
}

func (f *fakeContainers) Create(_ context.Context, r runtime.CreateRequest) (string, error) {
	f.creates = append(f.creates, r)
	return "ctr-id", nil
}

func TestRunPodSandboxTranslation(t *testing.T) {
	md := &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1", Attempt: 2}
	res := &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 1 << 30}
	shares, limit := uint64(512), int64(1<<30)
	wantRes := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}, Memory: &specs.LinuxMemory{Limit: &limit}}
	// No namespace options read as the enum's zero value, POD: one PID
	// namespace for the pod, as containerd reads them too.
	base := sandbox.RunRequest{Name: "web", Namespace: "default", UID: "u1", Attempt: 2, Origin: store.OriginCRI, SharedPID: true}
	with := func(f func(*sandbox.RunRequest)) sandbox.RunRequest { r := base; f(&r); return r }
	ns := func(o *runtimeapi.NamespaceOption) *runtimeapi.LinuxPodSandboxConfig {
		return &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: o}}
	}
	idmap := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	for _, tc := range []struct {
		name    string
		req     *runtimeapi.RunPodSandboxRequest
		want    sandbox.RunRequest
		wantErr error
	}{
		{name: "minimal", req: &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md}}, want: base},
		{
			name: "everything a kubelet sends",
			req: &runtimeapi.RunPodSandboxRequest{RuntimeHandler: "crun", Config: &runtimeapi.PodSandboxConfig{
				Metadata: md, Hostname: "web-0", LogDirectory: "/var/log/pods/x",
				Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
				DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"svc"}, Options: []string{"ndots:5"}},
				PortMappings: []*runtimeapi.PortMapping{
					{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
					{ContainerPort: 80},
				},
				Linux: &runtimeapi.LinuxPodSandboxConfig{
					CgroupParent: "/kubepods/burstable/podu1", Sysctls: map[string]string{"net.core.somaxconn": "1024"},
					Resources: res, Overhead: res,
				},
			}},
			want: with(func(r *sandbox.RunRequest) {
				r.RuntimeHandler, r.Hostname, r.LogDirectory = "crun", "web-0", "/var/log/pods/x"
				r.Labels, r.Annotations = map[string]string{"app": "web"}, map[string]string{"a": "b"}
				r.DNS = &podfiles.DNS{Servers: []string{"10.0.0.10"}, Searches: []string{"svc"}, Options: []string{"ndots:5"}}
				r.PortMappings = []cni.PortMapping{
					{Protocol: "udp", ContainerPort: 53, HostPort: 5353, HostIP: "127.0.0.1"},
					{Protocol: "tcp", ContainerPort: 80},
				}
				r.CgroupParent, r.Sysctls = "/kubepods/burstable/podu1", map[string]string{"net.core.somaxconn": "1024"}
				r.Resources, r.Overhead = wantRes, wantRes
			}),
		},
		{
			name: "host namespaces",
			req: &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md, Linux: ns(&runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE})}},
			want: with(func(r *sandbox.RunRequest) {
				r.HostNetwork, r.HostIPC, r.HostPID, r.SharedPID = true, true, true, false
			}),
		},
		{
			name: "a PID namespace per container (what the kubelet sends)",
			req:  &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md, Linux: ns(&runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER})}},
			want: with(func(r *sandbox.RunRequest) { r.SharedPID = false }),
		},
		{
			name: "user namespace",
			req: &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md, Linux: ns(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: idmap, Gids: idmap}})}},
			want: with(func(r *sandbox.RunRequest) {
				r.UIDMap = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				r.GIDMap = r.UIDMap
			}),
		},
		{name: "no metadata", req: &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no uid", req: &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "a", Namespace: "b"}}}, wantErr: errdefs.ErrInvalidArgument},
		{
			name: "container user namespace mode",
			req: &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md, Linux: ns(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}})}},
			wantErr: errdefs.ErrInvalidArgument,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods := &fakePods{}
			s := New(Options{Sandboxes: pods})
			_, err := s.RunPodSandbox(context.Background(), tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || len(pods.runs) != 0 {
					t.Fatalf("err = %v, runs = %d; want %v and no Run", err, len(pods.runs), tc.wantErr)
				}
				return
			}
			if err != nil || len(pods.runs) != 1 {
				t.Fatalf("err = %v, runs = %d", err, len(pods.runs))
			}
			if diff := cmp.Diff(tc.want, pods.runs[0]); diff != "" {
				t.Errorf("RunRequest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateContainerTranslation(t *testing.T) {
	sb := store.Sandbox{ID: "pod-id", LogDirectory: "/var/log/pods/x"}
	md := &runtimeapi.ContainerMetadata{Name: "app", Attempt: 1}
	img := &runtimeapi.ImageSpec{Image: "busybox"}
	uid, gid := int64(1000), int64(2000)
	// No namespace options: the enum's zero value, the pod's PID namespace.
	base := runtime.CreateRequest{Name: "app", Attempt: 1, Origin: store.OriginCRI, Image: "busybox", Sandbox: sb, PIDMode: runtime.PIDPod}
	with := func(f func(*runtime.CreateRequest)) runtime.CreateRequest { r := base; f(&r); return r }
	sec := func(c *runtimeapi.LinuxContainerSecurityContext) *runtimeapi.LinuxContainerConfig {
		return &runtimeapi.LinuxContainerConfig{SecurityContext: c}
	}
	for _, tc := range []struct {
		name    string
		sandbox string // default sb.ID
		cfg     *runtimeapi.ContainerConfig
		want    runtime.CreateRequest
		wantErr error
	}{
		{name: "minimal", cfg: &runtimeapi.ContainerConfig{Metadata: md, Image: img}, want: base},
		{
			name: "process, env, log path, labels",
			cfg: &runtimeapi.ContainerConfig{
				Metadata: md, Image: img, Command: []string{"sh", "-c"}, Args: []string{"echo hi"}, WorkingDir: "/w",
				Envs: []*runtimeapi.KeyValue{{Key: "A", Value: []byte("1")}, {Key: "B", Value: []byte("x=y")}}, LogPath: "app/0.log",
				Tty: true, Stdin: true, StdinOnce: true,
				Labels: map[string]string{"l": "1"}, Annotations: map[string]string{"a": "2"},
			},
			want: with(func(r *runtime.CreateRequest) {
				r.Command, r.Args, r.WorkingDir = []string{"sh", "-c"}, []string{"echo hi"}, "/w"
				r.Env, r.LogPath = []string{"A=1", "B=x=y"}, "/var/log/pods/x/app/0.log"
				r.TTY, r.Stdin, r.StdinOnce = true, true, true
				r.Labels, r.Annotations = map[string]string{"l": "1"}, map[string]string{"a": "2"}
			}),
		},
		{
			name: "security context",
			cfg: &runtimeapi.ContainerConfig{Metadata: md, Image: img, Linux: sec(&runtimeapi.LinuxContainerSecurityContext{
				Privileged: true, ReadonlyRootfs: true, NoNewPrivs: true,
				Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"ALL"}},
				RunAsUser:    &runtimeapi.Int64Value{Value: uid}, RunAsGroup: &runtimeapi.Int64Value{Value: gid},
				SupplementalGroups: []int64{3000}, SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict,
				MaskedPaths: []string{}, ReadonlyPaths: []string{"/proc/sys"},
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_NODE},
			})},
			want: with(func(r *runtime.CreateRequest) {
				r.Privileged, r.ReadonlyRootfs, r.NoNewPrivileges = true, true, true
				r.CapAdd, r.CapDrop = []string{"NET_ADMIN"}, []string{"ALL"}
				r.User = runtime.UserRequest{UID: &uid, GID: &gid, SupplementalGroups: []int64{3000}, StrictGroups: true}
				// An empty list is "none" (the kubelet's unmasked /proc);
				// nil keeps the defaults.
				r.MaskedPaths, r.ROPaths = []string{}, []string{"/proc/sys"}
				r.PIDMode, r.HostIPC = runtime.PIDContainer, true
			}),
		},
		{
			name: "PID namespace of another container",
			cfg: &runtimeapi.ContainerConfig{Metadata: md, Image: img, Linux: sec(&runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "other"}})},
			want: with(func(r *runtime.CreateRequest) { r.PIDMode, r.PIDTarget = runtime.PIDTarget, "other" }),
		},
		{
			name: "mounts, image volume, devices, stop signal",
			cfg: &runtimeapi.ContainerConfig{
				Metadata: md, Image: img, StopSignal: runtimeapi.Signal_SIGNAL_SIGUSR1,
				Mounts: []*runtimeapi.Mount{
					{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/u/etc-hosts"},
					{ContainerPath: "/data", Image: &runtimeapi.ImageSpec{Image: "data:1"}, ImageSubPath: "sub", Readonly: true},
				},
				Devices: []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}},
			},
			want: with(func(r *runtime.CreateRequest) {
				r.StopSignal = "SIGUSR1"
				r.Mounts = []oci.Mount{{Source: "/var/lib/kubelet/pods/u/etc-hosts", Destination: "/etc/hosts", Propagation: "rprivate"}}
				r.ImageMounts = []runtime.ImageMount{{Image: "data:1", Destination: "/data", SubPath: "sub"}}
				r.Devices = []oci.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}}
			}),
		},
		{name: "no name", cfg: &runtimeapi.ContainerConfig{Image: img}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no image", cfg: &runtimeapi.ContainerConfig{Metadata: md}, wantErr: errdefs.ErrInvalidArgument},
		{name: "unknown sandbox", sandbox: "nosuch", cfg: &runtimeapi.ContainerConfig{Metadata: md, Image: img}, wantErr: errdefs.ErrNotFound},
		{
			name:    "TARGET without a target",
			cfg:     &runtimeapi.ContainerConfig{Metadata: md, Image: img, Linux: sec(&runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}})},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "writable image volume",
			cfg:     &runtimeapi.ContainerConfig{Metadata: md, Image: img, Mounts: []*runtimeapi.Mount{{ContainerPath: "/d", Image: &runtimeapi.ImageSpec{Image: "data:1"}}}},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "image and host path in one mount",
			cfg:     &runtimeapi.ContainerConfig{Metadata: md, Image: img, Mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "data:1"}}}},
			wantErr: errdefs.ErrInvalidArgument,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrs := &fakeContainers{}
			s := New(Options{Sandboxes: &fakePods{sb: sb}, Containers: ctrs})
			req := &runtimeapi.CreateContainerRequest{PodSandboxId: sb.ID, Config: tc.cfg}
			if tc.sandbox != "" {
				req.PodSandboxId = tc.sandbox
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := s.CreateContainer(ctx, req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || len(ctrs.creates) != 0 {
					t.Fatalf("err = %v, creates = %d; want %v and no Create", err, len(ctrs.creates), tc.wantErr)
				}
				return
			}
			if err != nil || len(ctrs.creates) != 1 {
				t.Fatalf("err = %v, creates = %d", err, len(ctrs.creates))
			}
			if diff := cmp.Diff(tc.want, ctrs.creates[0]); diff != "" {
				t.Errorf("CreateRequest (-want +got):\n%s", diff)
			}
		})
	}
}
