package cri

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
)

// The CreateContainer translations that need no host: resources, stop
// signal, seccomp and mounts.

func TestToResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name string
		in   *runtimeapi.LinuxContainerResources
		want *specs.LinuxResources
	}{
		{
			// Zero means "not set": nothing is limited.
			name: "none",
			in:   &runtimeapi.LinuxContainerResources{},
			want: &specs.LinuxResources{CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{}},
		},
		{
			name: "cpu and memory",
			in: &runtimeapi.LinuxContainerResources{
				CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0-1", CpusetMems: "0",
				MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 128 << 20,
			},
			want: &specs.LinuxResources{
				CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0-1", Mems: "0"},
				Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)},
			},
		},
		{
			name: "hugepages and unified",
			in: &runtimeapi.LinuxContainerResources{
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}},
				Unified:        map[string]string{"memory.high": "1000000"},
			},
			want: &specs.LinuxResources{
				CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{},
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
				Unified:        map[string]string{"memory.high": "1000000"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, toResources(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		in   runtimeapi.Signal
		want string
		// num is the Linux signal number the runtime must send.
		num syscall.Signal
	}{
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "", 0},
		{runtimeapi.Signal_SIGNAL_SIGTERM, "SIGTERM", syscall.SIGTERM},
		{runtimeapi.Signal_SIGNAL_SIGQUIT, "SIGQUIT", syscall.SIGQUIT},
		{runtimeapi.Signal_SIGNAL_SIGIOT, "SIGIOT", syscall.SIGABRT},
		{runtimeapi.Signal_SIGNAL_SIGPOLL, "SIGPOLL", syscall.SIGIO},
		{runtimeapi.Signal_SIGNAL_SIGRTMIN, "SIGRTMIN", 34},
		{runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3, "SIGRTMIN+3", 37}, // systemd's
		{runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS1, "SIGRTMAX-1", 63},
		{runtimeapi.Signal_SIGNAL_SIGRTMAX, "SIGRTMAX", 64},
	} {
		t.Run(tc.in.String(), func(t *testing.T) {
			got := stopSignal(&runtimeapi.ContainerConfig{StopSignal: tc.in})
			if got != tc.want {
				t.Errorf("stopSignal = %q, want %q", got, tc.want)
			}
			if sig := runtime.ParseSignal(got, 0); sig != tc.num {
				t.Errorf("runtime.ParseSignal(%q) = %d, want %d", got, sig, tc.num)
			}
		})
	}
	// Every signal the CRI can name reaches the runtime as a signal.
	for v, name := range runtimeapi.Signal_name {
		if v == 0 {
			continue
		}
		got := stopSignal(&runtimeapi.ContainerConfig{StopSignal: runtimeapi.Signal(v)})
		if runtime.ParseSignal(got, 0) == 0 {
			t.Errorf("%s: stop signal %q is unknown to the runtime", name, got)
		}
	}
	if got := stopSignal(nil); got != "" {
		t.Errorf("stopSignal(nil) = %q, want none", got)
	}
}

func TestSeccompProfile(t *testing.T) {
	for _, tc := range []struct {
		name               string
		in                 *runtimeapi.LinuxContainerSecurityContext
		wantKind, wantPath string
		wantErr            error
	}{
		{name: "no security context", in: nil},
		{name: "none", in: &runtimeapi.LinuxContainerSecurityContext{}},
		{
			name:     "runtime default",
			in:       &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}},
			wantKind: runtime.SeccompRuntimeDefault,
		},
		{
			name:     "unconfined",
			in:       &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}},
			wantKind: runtime.SeccompUnconfined,
		},
		{
			name:     "localhost",
			in:       &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/etc/profile.json"}},
			wantKind: runtime.SeccompLocalhost, wantPath: "/etc/profile.json",
		},
		{
			name:    "localhost, relative",
			in:      &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "profile.json"}},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			// The typed field wins over the deprecated path.
			name: "field over deprecated path",
			in: &runtimeapi.LinuxContainerSecurityContext{
				Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				SeccompProfilePath: "runtime/default",
			},
			wantKind: runtime.SeccompUnconfined,
		},
		{name: "deprecated runtime/default", in: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "runtime/default"}, wantKind: runtime.SeccompRuntimeDefault},
		{name: "deprecated docker/default", in: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "docker/default"}, wantKind: runtime.SeccompRuntimeDefault},
		{name: "deprecated unconfined", in: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "unconfined"}, wantKind: runtime.SeccompUnconfined},
		{
			name:     "deprecated localhost",
			in:       &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "localhost//etc/p.json"},
			wantKind: runtime.SeccompLocalhost, wantPath: "/etc/p.json",
		},
		{name: "deprecated unknown", in: &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "strict"}, wantErr: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, path, err := seccompProfile(tc.in)
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if kind != tc.wantKind || path != tc.wantPath {
				t.Errorf("= %q %q, want %q %q", kind, path, tc.wantKind, tc.wantPath)
			}
		})
	}
}

func TestToMount(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	private := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	for _, tc := range []struct {
		name    string
		in      *runtimeapi.Mount
		want    oci.Mount
		wantErr error
	}{
		{
			name: "private by default",
			in:   &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir},
			want: oci.Mount{Source: dir, Destination: "/data", Propagation: "rprivate"},
		},
		{
			name: "read-only",
			in:   &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Readonly: true},
			want: oci.Mount{Source: dir, Destination: "/data", ReadOnly: true, Propagation: "rprivate"},
		},
		{
			name: "host to container",
			in:   &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			want: oci.Mount{Source: dir, Destination: "/data", Propagation: "rslave"},
		},
		{
			name: "bidirectional",
			in:   &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			want: oci.Mount{Source: dir, Destination: "/data", Propagation: "rshared"},
		},
		{
			name: "recursive read-only",
			in:   &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Readonly: true, RecursiveReadOnly: true, Propagation: private},
			want: oci.Mount{Source: dir, Destination: "/data", ReadOnly: true, RecursiveReadOnly: true, Propagation: "rprivate"},
		},
		// Symlinked and missing host paths are runtime's to resolve and
		// make (TestPrepareBindSources): toMount only translates.
		{
			name: "host path kept as given",
			in:   &runtimeapi.Mount{ContainerPath: "/data", HostPath: link},
			want: oci.Mount{Source: link, Destination: "/data", Propagation: "rprivate"},
		},
		{name: "relative container path", in: &runtimeapi.Mount{ContainerPath: "data", HostPath: dir}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no container path", in: &runtimeapi.Mount{HostPath: dir}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no host path", in: &runtimeapi.Mount{ContainerPath: "/data"}, wantErr: errdefs.ErrInvalidArgument},
		{
			name:    "recursive read-only, writable",
			in:      &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, RecursiveReadOnly: true, Propagation: private},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "recursive read-only, propagated",
			in: &runtimeapi.Mount{
				ContainerPath: "/data", HostPath: dir, Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER,
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := toMount(tc.in)
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
