package cri

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

func TestPodUserNS(t *testing.T) {
	one := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s := &Server{}
	// No options and NODE: the host's (the enum's zero value is POD, so
	// nil must not be read through GetMode).
	for _, o := range []*runtimeapi.UserNamespace{nil, {Mode: runtimeapi.NamespaceMode_NODE}} {
		if u, g, err := s.podUserNS(o); err != nil || u != nil || g != nil {
			t.Errorf("%v: %v %v %v, want the host's", o, u, g, err)
		}
	}
	u, g, err := s.podUserNS(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one})
	if err != nil || len(u) != 1 || u[0] != want[0] || len(g) != 1 || g[0] != want[0] {
		t.Errorf("POD: %v %v %v", u, g, err)
	}
	for _, o := range []*runtimeapi.UserNamespace{
		{Mode: runtimeapi.NamespaceMode_POD},
		{Mode: runtimeapi.NamespaceMode_POD, Uids: one},
		{Mode: runtimeapi.NamespaceMode_CONTAINER},
		{Mode: runtimeapi.NamespaceMode_TARGET},
	} {
		if _, _, err := s.podUserNS(o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%v: %v, want ErrInvalidArgument", o, err)
		}
	}
	off := &Server{userns: errors.New("no idmapped mounts")}
	if _, _, err := off.podUserNS(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("unsupported host: %v, want ErrFailedPrecondition", err)
	}
	if _, _, err := off.podUserNS(nil); err != nil {
		t.Errorf("unsupported host, no options: %v", err)
	}
}

func TestCheckContainerUserNS(t *testing.T) {
	one := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	other := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 65536}}
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	pod := store.Sandbox{ID: "p", UserNS: "/run/berth/userns/p", UIDMap: maps, GIDMap: maps}
	plain := store.Sandbox{ID: "q"}
	for _, tc := range []struct {
		o  *runtimeapi.UserNamespace
		sb store.Sandbox
		ok bool
	}{
		{nil, pod, true},
		{nil, plain, true},
		{&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}, pod, true},
		{&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}, plain, true},
		{&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}, pod, false},
		{&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}, plain, false},
		{&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: other, Gids: one}, pod, false},
		{&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, pod, false},
	} {
		err := checkContainerUserNS(tc.o, tc.sb)
		if (err == nil) != tc.ok {
			t.Errorf("%v in %s: %v, want ok=%v", tc.o, tc.sb.ID, err, tc.ok)
		}
	}
}
