package runtime

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
)

func TestPodMountsYieldToRequest(t *testing.T) {
	sb := store.Sandbox{ID: "pod", Dir: "/run/pod"}
	all := []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev/shm"}
	for _, tc := range []struct {
		name   string
		req    CreateRequest
		want   []string // destinations of the pod's own mounts kept
		source string   // the kept source at the overridden path, if any
	}{
		{name: "none", req: CreateRequest{}, want: all},
		{name: "hosts (the kubelet's)", req: CreateRequest{Mounts: []oci.Mount{{Destination: "/etc/hosts", Source: "/var/lib/kubelet/pods/u/etc-hosts"}}},
			want: []string{"/etc/hostname", "/etc/resolv.conf", "/dev/shm"}},
		{name: "hostname", req: CreateRequest{Mounts: []oci.Mount{{Destination: "/etc/hostname", Source: "/h"}}},
			want: []string{"/etc/hosts", "/etc/resolv.conf", "/dev/shm"}},
		{name: "resolv.conf, not clean", req: CreateRequest{Mounts: []oci.Mount{{Destination: "/etc//resolv.conf", Source: "/r"}}},
			want: []string{"/etc/hostname", "/etc/hosts", "/dev/shm"}},
		{name: "shm", req: CreateRequest{Mounts: []oci.Mount{{Destination: "/dev/shm/", Source: "/s"}}},
			want: []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}},
		{name: "image volume over hosts", req: CreateRequest{ImageMounts: []ImageMount{{Image: "i", Destination: "/etc/hosts"}}},
			want: []string{"/etc/hostname", "/etc/resolv.conf", "/dev/shm"}},
		{name: "host IPC has no pod shm", req: CreateRequest{HostIPC: true},
			want: []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}},
		{name: "other paths keep all", req: CreateRequest{Mounts: []oci.Mount{{Destination: "/etc/hosts.d", Source: "/x"}, {Destination: "/etc", Source: "/y"}}},
			want: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Sandbox = sb
			var got []string
			for _, m := range podMountsFor(tc.req, func(string) bool { return true }) {
				got = append(got, m.Destination)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pod mounts kept (-want +got):\n%s", diff)
			}
		})
	}
}

// The request's own mount wins over the pod's file in the generated spec,
// while a path the request names twice is still refused.
func TestRequestMountOverridesPodFileInSpec(t *testing.T) {
	req := CreateRequest{Sandbox: store.Sandbox{ID: "pod", Dir: "/run/pod"},
		Mounts: []oci.Mount{{Destination: "/etc/hosts", Source: "/kubelet/etc-hosts"}}}
	mounts := append(podMountsFor(req, func(string) bool { return false }), req.Mounts...)
	spec, err := oci.Generate(oci.Container{ID: "c", Rootfs: "/rootfs", Args: []string{"sh"}, Mounts: mounts}, oci.Host{})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, m := range spec.Mounts {
		if m.Destination == "/etc/hosts" {
			hosts = append(hosts, m.Source)
		}
	}
	if diff := cmp.Diff([]string{"/kubelet/etc-hosts"}, hosts); diff != "" {
		t.Errorf("/etc/hosts sources (-want +got):\n%s", diff)
	}

	req.Mounts = append(req.Mounts, oci.Mount{Destination: "/etc/hosts/", Source: "/other"})
	mounts = append(podMountsFor(req, func(string) bool { return false }), req.Mounts...)
	_, err = oci.Generate(oci.Container{ID: "c", Rootfs: "/rootfs", Args: []string{"sh"}, Mounts: mounts}, oci.Host{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a request naming /etc/hosts twice: got %v, want InvalidArgument", err)
	}
}
