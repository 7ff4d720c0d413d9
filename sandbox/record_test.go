package sandbox

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/store"
)

func TestNewRecord(t *testing.T) {
	req := RunRequest{
		Name: "web", Namespace: "ns", UID: "u", Attempt: 1, Labels: map[string]string{"a": "b"}, Origin: store.OriginCRI,
		RuntimeHandler: "crun", Hostname: "h", LogDirectory: "/var/log/pods/x",
		DNS:          &podfiles.DNS{Servers: []string{"1.1.1.1"}, Options: []string{"ndots:2"}},
		PortMappings: []cni.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"}},
		CgroupParent: "/kubepods", HostIPC: true, SharedPID: true, Sysctls: map[string]string{"k": "v"},
		Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0"}},
	}
	got := newRecord("id1", req)
	want := store.Sandbox{
		ID: "id1", Name: "web", Namespace: "ns", UID: "u", Attempt: 1, Key: "web_ns_u_1", Origin: store.OriginCRI,
		Labels: map[string]string{"a": "b"}, Hostname: "h", LogDirectory: "/var/log/pods/x",
		DNS:            &store.DNS{Servers: []string{"1.1.1.1"}, Options: []string{"ndots:2"}},
		PortMappings:   []store.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"}},
		RuntimeHandler: "crun", CgroupParent: "/kubepods", HostIPC: true, SharedPID: true, Sysctls: map[string]string{"k": "v"},
		Resources: req.Resources,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.Sandbox{}, "CreatedAt")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFilter(t *testing.T) {
	yes, no := true, false
	ready := store.Sandbox{ID: "abc", Origin: store.OriginCRI, ReadyAt: time.Unix(1, 0), Labels: map[string]string{"app": "web"}}
	stopped := store.Sandbox{ID: "abd", ReadyAt: time.Unix(1, 0), StoppedAt: time.Unix(2, 0)}
	making := store.Sandbox{ID: "abe"}
	failedEarly := store.Sandbox{ID: "abf", StoppedAt: time.Unix(2, 0)}
	for name, tc := range map[string]struct {
		f    Filter
		sb   store.Sandbox
		want bool
	}{
		"zero":                       {Filter{}, stopped, true},
		"id prefix":                  {Filter{IDPrefix: "abc"}, ready, true},
		"other id":                   {Filter{IDPrefix: "abc"}, stopped, false},
		"ready":                      {Filter{Ready: &yes}, ready, true},
		"not ready":                  {Filter{Ready: &no}, stopped, true},
		"ready, stopped":             {Filter{Ready: &yes}, stopped, false},
		"labels":                     {Filter{Labels: map[string]string{"app": "web"}}, ready, true},
		"origin":                     {Filter{Origin: store.OriginCRI}, ready, true},
		"other origin":               {Filter{Origin: store.OriginDocker}, ready, false},
		"labels, missing":            {Filter{Labels: map[string]string{"app": "web"}}, stopped, false},
		"being made":                 {Filter{}, making, true},
		"made: ready":                {Filter{Made: true}, ready, true},
		"made: stopped":              {Filter{Made: true}, stopped, true},
		"made: stopped before ready": {Filter{Made: true}, failedEarly, true},
		"made: being made":           {Filter{Made: true}, making, false},
	} {
		if got := tc.f.Matches(tc.sb); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", name, got, tc.want)
		}
	}
}
