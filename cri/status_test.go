package cri

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/store"
)

// Status reports the resources CreateContainer and UpdateContainerResources
// were given: the CRI → OCI → CRI round trip loses nothing.
func TestResourcesRoundTrip(t *testing.T) {
	for name, in := range map[string]*runtimeapi.LinuxContainerResources{
		"everything": {
			CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, OomScoreAdj: -10,
			CpusetCpus: "0-1", CpusetMems: "0", MemorySwapLimitInBytes: 128 << 20,
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}},
			Unified:        map[string]string{"memory.high": "1000000"},
		},
		"memory only": {MemoryLimitInBytes: 1 << 20},
		"empty":       {},
	} {
		var adj *int
		if in.OomScoreAdj != 0 {
			v := int(in.OomScoreAdj)
			adj = &v
		}
		got := criResources(toResources(in), adj)
		if diff := cmp.Diff(in, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s (-sent +reported):\n%s", name, diff)
		}
	}
	if got := criResources(nil, nil); got != nil {
		t.Errorf("no resources reported as %v", got)
	}
}

func TestContainerStatusFromRecord(t *testing.T) {
	limit := int64(1 << 20)
	c := store.Container{
		ID: "c1", Name: "app", Attempt: 1, Image: "busybox", Pid: 42, UID: 1000, GID: 1000,
		LogPath: "/logs/app.log", StopSignal: "usr1",
		Mounts: []store.Mount{
			{Destination: "/a", Source: "/src", ReadOnly: true, Propagation: "rslave"},
			{Destination: "/b", Source: "/src2", Propagation: "rshared"},
			{Destination: "/c", Source: "/src3", RecursiveReadOnly: true, ReadOnly: true},
		},
		Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
	}
	st := (&Server{}).toContainerStatus(context.Background(), c)
	wantMounts := []*runtimeapi.Mount{
		{ContainerPath: "/a", HostPath: "/src", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/b", HostPath: "/src2", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		{ContainerPath: "/c", HostPath: "/src3", Readonly: true, RecursiveReadOnly: true},
	}
	if diff := cmp.Diff(wantMounts, st.Mounts, protocmp.Transform()); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if st.StopSignal != runtimeapi.Signal_SIGNAL_SIGUSR1 {
		t.Errorf("stop signal = %v", st.StopSignal)
	}
	if st.GetResources().GetLinux().GetMemoryLimitInBytes() != limit || st.LogPath != c.LogPath || st.GetUser().GetLinux().GetUid() != 1000 {
		t.Errorf("status = %v", st)
	}
	if st := (&Server{}).toContainerStatus(context.Background(), store.Container{ID: "c2"}); st.StopSignal != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT || st.Resources != nil {
		t.Errorf("defaults: stop signal %v, resources %v", st.StopSignal, st.Resources)
	}
}

func TestSandboxNamespaces(t *testing.T) {
	for name, tc := range map[string]struct {
		sb   store.Sandbox
		want *runtimeapi.NamespaceOption
	}{
		"pod defaults": {store.Sandbox{}, &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
		}},
		"host": {store.Sandbox{HostNetwork: true, HostIPC: true, HostPID: true, SharedPID: true}, &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
		}},
		"shared PID and a user namespace": {
			store.Sandbox{SharedPID: true, UserNS: "/run/u", UIDMap: []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}, GIDMap: []specs.LinuxIDMapping{{HostID: 200000, Size: 65536}}},
			&runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD,
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
					Uids: []*runtimeapi.IDMapping{{HostId: 100000, Length: 65536}}, Gids: []*runtimeapi.IDMapping{{HostId: 200000, Length: 65536}}},
			},
		},
	} {
		if diff := cmp.Diff(tc.want, sandboxNamespaces(tc.sb), protocmp.Transform()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}
