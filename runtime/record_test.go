package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
)

func TestNewRecord(t *testing.T) {
	uid, limit, adj := int64(1000), int64(1<<20), 5
	req := CreateRequest{
		Name: "app", Attempt: 2, Labels: map[string]string{"l": "1"}, Origin: store.OriginDocker,
		Image: "busybox", Sandbox: store.Sandbox{ID: "sb", RuntimeHandler: "crun"},
		Command: []string{"sh"}, Args: []string{"-c", "true"}, Env: []string{"A=1"}, WorkingDir: "/w",
		Mounts:      []oci.Mount{{Source: "/src", Destination: "/dst", ReadOnly: true, Propagation: "rslave"}},
		ImageMounts: []ImageMount{{Image: "alpine", Destination: "/img", SubPath: "etc"}},
		Devices:     []oci.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rw"}},
		LogPath:     "/logs/app.log", TTY: true, Stdin: true,
		User:       UserRequest{UID: &uid, SupplementalGroups: []int64{7}},
		Privileged: true, CapAdd: []string{"NET_ADMIN"}, MaskedPaths: []string{},
		PIDMode: PIDTarget, PIDTarget: "other", HostIPC: true, OOMScoreAdj: &adj,
		Resources:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
		SeccompProfile: SeccompLocalhost, SeccompPath: "/p.json", StopSignal: "SIGUSR1",
	}
	got := newRecord("c1", req)
	want := store.Container{
		ID: "c1", SandboxID: "sb", Name: "app", Attempt: 2, Key: "app_sb_2", Origin: store.OriginDocker,
		Labels:  map[string]string{"l": "1"},
		Process: store.Process{Command: []string{"sh"}, Args: []string{"-c", "true"}, Env: []string{"A=1"}, WorkingDir: "/w", TTY: true, Stdin: true},
		User:    store.User{UID: &uid, SupplementalGroups: []int64{7}},
		Mounts: []store.Mount{
			{Destination: "/dst", Source: "/src", ReadOnly: true, Propagation: "rslave"},
			{Destination: "/img", Image: "alpine", ImageSubPath: "etc", ReadOnly: true},
		},
		Devices:   []store.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rw"}},
		Resources: req.Resources, OOMScoreAdj: &adj,
		Security: store.Security{Privileged: true, CapAdd: []string{"NET_ADMIN"}, MaskedPaths: []string{}, SeccompProfile: SeccompLocalhost, SeccompPath: "/p.json"},
		PIDMode:  store.NamespaceTarget, PIDTarget: "other", HostIPC: true,
		Image: "busybox", RuntimeHandler: "crun", LogPath: "/logs/app.log",
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.Container{}, "CreatedAt")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Empty and nil masked paths mean different things and must stay so.
	if got.Security.MaskedPaths == nil || got.Security.ReadonlyPaths != nil {
		t.Errorf("masked %#v, read-only %#v", got.Security.MaskedPaths, got.Security.ReadonlyPaths)
	}
	if r := newRecord("c3", CreateRequest{Name: "x", UniqueName: "web"}); r.Key != "web" {
		t.Errorf("key with a unique name = %q", r.Key)
	}
	if r := newRecord("c2", CreateRequest{Name: "x"}); r.PIDMode != store.NamespaceContainer || r.PIDTarget != "" {
		t.Errorf("default PID mode = %q %q", r.PIDMode, r.PIDTarget)
	}
}

func TestPrepareBindSources(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "a", "b")
	in := []oci.Mount{
		{Source: link, Destination: "/l"},
		{Source: missing, Destination: "/m"},
		{Source: "tmpfs", Destination: "/t", Type: "tmpfs"},
	}
	out, err := prepareBindSources(in)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Source != real || out[1].Source != missing || out[2].Source != "tmpfs" {
		t.Errorf("sources = %q, %q, %q", out[0].Source, out[1].Source, out[2].Source)
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Errorf("missing host path not created: %v", err)
	}
	if in[0].Source != link {
		t.Error("prepareBindSources changed its input")
	}
	other := filepath.Join(dir, "other")
	if _, err := prepareBindSources([]oci.Mount{{Source: other, Destination: "/o"}, {Source: "rel/path", Destination: "/x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("relative host path = %v, want InvalidArgument", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a refused request created %s: %v", other, err)
	}
}

func TestContainerFilter(t *testing.T) {
	running, exited := Running, Exited
	c := store.Container{ID: "abc", SandboxID: "sb1", Origin: store.OriginCRI, Pid: 1, StartedAt: time.Unix(1, 0), Labels: map[string]string{"a": "1", "b": "2"}}
	for name, tc := range map[string]struct {
		f    ContainerFilter
		want bool
	}{
		"zero":             {ContainerFilter{}, true},
		"id prefix":        {ContainerFilter{IDPrefix: "ab"}, true},
		"other id":         {ContainerFilter{IDPrefix: "b"}, false},
		"sandbox":          {ContainerFilter{SandboxIDPrefix: "sb1"}, true},
		"other sandbox":    {ContainerFilter{SandboxIDPrefix: "sb2"}, false},
		"state":            {ContainerFilter{State: &running}, true},
		"other state":      {ContainerFilter{State: &exited}, false},
		"labels":           {ContainerFilter{Labels: map[string]string{"a": "1"}}, true},
		"label mismatch":   {ContainerFilter{Labels: map[string]string{"a": "2"}}, false},
		"label missing":    {ContainerFilter{Labels: map[string]string{"c": ""}}, false},
		"origin":           {ContainerFilter{Origin: store.OriginCRI}, true},
		"other origin":     {ContainerFilter{Origin: store.OriginDocker}, false},
		"all at once":      {ContainerFilter{IDPrefix: "abc", SandboxIDPrefix: "sb", State: &running, Labels: map[string]string{"b": "2"}}, true},
		"all but one fits": {ContainerFilter{IDPrefix: "abc", SandboxIDPrefix: "sb", State: &exited, Labels: map[string]string{"b": "2"}}, false},
		"made":             {ContainerFilter{Made: true}, true},
	} {
		if got := tc.f.Matches(c); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", name, got, tc.want)
		}
	}
	// Recorded but without a process yet: being made.
	making := store.Container{ID: "abd", SandboxID: "sb1"}
	if !(ContainerFilter{}).Matches(making) || (ContainerFilter{Made: true}).Matches(making) {
		t.Error("a container being made: want it matched by the zero filter only, not with Made")
	}
}

func TestSignalName(t *testing.T) {
	for in, want := range map[string]string{"SIGTERM": "SIGTERM", "usr1": "SIGUSR1", "9": "SIGKILL", "": "", "NOPE": ""} {
		if got := SignalName(in); got != want {
			t.Errorf("SignalName(%q) = %q, want %q", in, got, want)
		}
	}
}
