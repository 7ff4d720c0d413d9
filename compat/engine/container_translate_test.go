package engine

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/store"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testImage() *v1.ConfigFile {
	return &v1.ConfigFile{Config: v1.Config{
		Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "A=1"},
		WorkingDir: "/app", Labels: map[string]string{"img": "yes", "both": "image"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Healthcheck:  &v1.HealthConfig{Test: []string{"CMD", "true"}, Retries: 2},
	}}
}

func translate(t *testing.T, req container.CreateRequest) (createPlan, error) {
	t.Helper()
	next := int32(40000)
	return translateCreate(req, translateEnv{
		ID: testID, Name: "web", Image: testImage(), InitBinary: "/usr/bin/docker-init",
		FreePort: func(string) (int32, error) { next++; return next, nil },
	})
}

func TestTranslateProcess(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cfg             container.Config
		command, args   []string
		entrypoint, cmd []string
	}{
		{"image's", container.Config{}, []string{"/entry"}, []string{"serve"}, []string{"/entry"}, []string{"serve"}},
		{"cmd replaces the image's", container.Config{Cmd: []string{"run"}}, []string{"/entry"}, []string{"run"}, []string{"/entry"}, []string{"run"}},
		{"entrypoint drops the image's cmd", container.Config{Entrypoint: []string{"/sh"}}, []string{"/sh"}, nil, []string{"/sh"}, nil},
		{"both", container.Config{Entrypoint: []string{"/sh"}, Cmd: []string{"-c", "x"}}, []string{"/sh"}, []string{"-c", "x"}, []string{"/sh"}, []string{"-c", "x"}},
		{"empty entrypoint", container.Config{Entrypoint: []string{""}, Cmd: []string{"ls"}}, []string{"ls"}, nil, nil, []string{"ls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := translate(t, container.CreateRequest{Config: &tc.cfg})
			if err != nil {
				t.Fatal(err)
			}
			c := p.Container
			if diff := cmp.Diff([][]string{tc.command, tc.args, tc.entrypoint, tc.cmd}, [][]string{c.Command, c.Args, c.Docker.Entrypoint, c.Docker.Cmd}); diff != "" {
				t.Errorf("command, args, entrypoint, cmd (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranslateCreate(t *testing.T) {
	mem, pids := int64(64<<20), int64(100)
	init := true
	req := container.CreateRequest{
		Config: &container.Config{
			Image: "busybox", User: "1000:1000", Env: []string{"A=2", "B=3"}, Tty: true, OpenStdin: true,
			Labels: map[string]string{"both": "request"}, StopSignal: "SIGUSR1",
			ExposedPorts: network.PortSet{network.MustParsePort("90/udp"): {}},
		},
		HostConfig: &container.HostConfig{
			Binds:         []string{"/srv:/srv:ro", "named:/named", "/anon"},
			PortBindings:  network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}}},
			RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3},
			DNS:           []netip.Addr{netip.MustParseAddr("9.9.9.9")}, DNSSearch: []string{"example.org"},
			ExtraHosts: []string{"db:10.0.0.5"}, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"},
			SecurityOpt: []string{"no-new-privileges", "seccomp=unconfined"}, ReadonlyRootfs: true, Init: &init,
			Tmpfs: map[string]string{"/run": "size=1m"}, PublishAllPorts: true,
			Resources: container.Resources{Memory: mem, NanoCPUs: 1_500_000_000, PidsLimit: &pids, CPUShares: 512,
				Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}},
			Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/scratch", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
		},
	}
	p, err := translate(t, req)
	if err != nil {
		t.Fatal(err)
	}
	sb, c := p.Sandbox, p.Container
	if p.NetworkMode != "bridge" || p.Network != "bridge" || sb.HostNetwork || sb.NoNetwork {
		t.Errorf("network: mode %q network %q host %v none %v", p.NetworkMode, p.Network, sb.HostNetwork, sb.NoNetwork)
	}
	if sb.Hostname != testID[:12] || sb.UniqueName != testID || sb.Origin != store.OriginDocker {
		t.Errorf("sandbox hostname %q unique name %q origin %q", sb.Hostname, sb.UniqueName, sb.Origin)
	}
	wantPorts := []cni.PortMapping{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"},
		{HostPort: 40001, ContainerPort: 90, Protocol: "udp"},
	}
	if diff := cmp.Diff(wantPorts, sb.PortMappings); diff != "" {
		t.Errorf("port mappings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&podfiles.DNS{Servers: []string{"9.9.9.9"}, Searches: []string{"example.org"}}, sb.DNS); diff != "" {
		t.Errorf("dns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"db:10.0.0.5"}, sb.ExtraHosts); diff != "" {
		t.Errorf("extra hosts (-want +got):\n%s", diff)
	}
	if c.ID != testID || c.UniqueName != "web" || c.Image != "busybox" || c.LogName == "" || c.Origin != store.OriginDocker {
		t.Errorf("container id %q name %q image %q log %q", c.ID, c.UniqueName, c.Image, c.LogName)
	}
	if diff := cmp.Diff([]string{"PATH=/bin", "A=2", "B=3"}, c.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if c.WorkingDir != "/app" || c.User.Username != "1000:1000" || !c.TTY || !c.Stdin || c.StopSignal != "SIGUSR1" {
		t.Errorf("workdir %q user %q tty %v stdin %v stop signal %q", c.WorkingDir, c.User.Username, c.TTY, c.Stdin, c.StopSignal)
	}
	if diff := cmp.Diff(map[string]string{"img": "yes", "both": "request"}, c.Labels); diff != "" {
		t.Errorf("labels: image's under the request's (-want +got):\n%s", diff)
	}
	if !c.NoNewPrivileges || c.SeccompProfile != runtime.SeccompUnconfined || !c.ReadonlyRootfs || c.Init != "/usr/bin/docker-init" {
		t.Errorf("nnp %v seccomp %q ro %v init %q", c.NoNewPrivileges, c.SeccompProfile, c.ReadonlyRootfs, c.Init)
	}
	quota, period, shares := int64(150000), uint64(100000), uint64(512)
	wantRes := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
	if diff := cmp.Diff(wantRes, c.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}, c.Rlimits); diff != "" {
		t.Errorf("rlimits (-want +got):\n%s", diff)
	}
	wantMounts := []oci.Mount{
		{Source: "/srv", Destination: "/srv", ReadOnly: true},
		{Type: "tmpfs", Source: "tmpfs", Destination: "/scratch", Options: []string{"nosuid", "nodev", "noexec", "size=1048576"}},
		{Type: "tmpfs", Source: "tmpfs", Destination: "/run", Options: []string{"nosuid", "nodev", "noexec", "size=1m"}},
	}
	if diff := cmp.Diff(wantMounts, c.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	wantVols := []volumeMount{{Name: "named", Destination: "/named"}, {Destination: "/anon"}, {Destination: "/data"}}
	if diff := cmp.Diff(wantVols, p.Volumes, cmp.AllowUnexported(volumeMount{})); diff != "" {
		t.Errorf("volumes: binds, then the image's VOLUMEs (-want +got):\n%s", diff)
	}
	want := runtime.DockerFields{
		RestartPolicy: store.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3},
		Healthcheck:   &store.Healthcheck{Test: []string{"CMD", "true"}, Retries: 2},
		Entrypoint:    []string{"/entry"}, Cmd: []string{"serve"},
		ExposedPorts: []string{"80/tcp", "90/udp"}, Tmpfs: map[string]string{"/run": "size=1m", "/scratch": "size=1048576"},
	}
	if diff := cmp.Diff(want, c.Docker); diff != "" {
		t.Errorf("docker fields (-want +got):\n%s", diff)
	}
}

func TestTranslateNetworkModes(t *testing.T) {
	for _, tc := range []struct {
		mode              string
		network, join     string
		host, none        bool
		hostnameInSandbox bool
	}{
		{"", "bridge", "", false, false, true},
		{"default", "bridge", "", false, false, true},
		{"host", "", "", true, false, false},
		{"none", "", "", false, true, true},
		{"container:db", "", "db", false, false, true},
		{"mynet", "mynet", "", false, false, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p, err := translate(t, container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(tc.mode)}})
			if err != nil {
				t.Fatal(err)
			}
			got := []any{p.Network, p.JoinContainer, p.Sandbox.HostNetwork, p.Sandbox.NoNetwork, p.Sandbox.Hostname != ""}
			if diff := cmp.Diff([]any{tc.network, tc.join, tc.host, tc.none, tc.hostnameInSandbox}, got); diff != "" {
				t.Errorf("network, join, host, none, hostname (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranslateRefuses(t *testing.T) {
	neg := int64(-1)
	for _, tc := range []struct {
		name string
		req  container.CreateRequest
		want string
		kind error
	}{
		{"rm with restart", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}},
			"can't create 'AutoRemove' container with restart policy", errdefs.ErrInvalidArgument},
		{"bad restart policy", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}},
			"invalid restart policy: unknown policy 'sometimes'", errdefs.ErrInvalidArgument},
		{"bad host port", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "http"}}}}},
			`invalid port specification: "http"`, errdefs.ErrInvalidArgument},
		{"relative bind", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{Binds: []string{"/srv:data"}}},
			"invalid volume specification: '/srv:data'", errdefs.ErrInvalidArgument},
		{"bad bind mode", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{Binds: []string{"/srv:/srv:rx"}}},
			"invalid mode: rx", errdefs.ErrInvalidArgument},
		{"duplicate mount point", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{Binds: []string{"/a:/x", "/b:/x"}}},
			"Duplicate mount point: /x", errdefs.ErrInvalidArgument},
		{"tiny memory", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 1024}}},
			"Minimum memory limit allowed is 6MB", errdefs.ErrInvalidArgument},
		{"cpus and period", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{Resources: container.Resources{NanoCPUs: 1e9, CPUPeriod: 1000}}},
			"Conflicting options: Nano CPUs and CPU Period cannot both be set", errdefs.ErrInvalidArgument},
		{"bad add-host", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{ExtraHosts: []string{"db:nowhere"}}},
			`invalid IP address in add-host: "nowhere"`, errdefs.ErrInvalidArgument},
		{"bad security opt", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{SecurityOpt: []string{"magic"}}},
			`invalid --security-opt 1: "magic"`, errdefs.ErrInvalidArgument},
		{"ports with container network", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: "container:db", PublishAllPorts: true}},
			"conflicting options: port publishing and the container type network mode", errdefs.ErrInvalidArgument},
		{"negative pids is unlimited, not an error", container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{Resources: container.Resources{PidsLimit: &neg}}},
			"", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translate(t, tc.req)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.kind) {
				t.Errorf("error %v, want %q wrapping %v", err, tc.want, tc.kind)
			}
		})
	}
}

func TestTranslateNoCommand(t *testing.T) {
	_, err := translateCreate(container.CreateRequest{Config: &container.Config{}}, translateEnv{ID: testID, Name: "x1", Image: &v1.ConfigFile{}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "no command specified") {
		t.Errorf("error %v, want docker's no command specified", err)
	}
}

func TestTranslateInitMissing(t *testing.T) {
	init := true
	_, err := translateCreate(container.CreateRequest{Config: &container.Config{Cmd: []string{"true"}}, HostConfig: &container.HostConfig{Init: &init}},
		translateEnv{ID: testID, Name: "x1", Image: &v1.ConfigFile{}})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "no init binary") {
		t.Errorf("error %v, want the missing init named", err)
	}
}

func TestGenerateName(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		name := generateName(func(n string) bool { return seen[n] })
		if seen[name] {
			t.Fatalf("generated %q twice", name)
		}
		seen[name] = true
		adj, surname, ok := strings.Cut(strings.TrimRight(name, "0123456789"), "_")
		if !ok || adj == "" || surname == "" || !validName.MatchString(name) || name == "boring_wozniak" {
			t.Errorf("generated name %q is not adjective_surname", name)
		}
	}
	// Every plain name taken: a digit is added.
	name := generateName(func(n string) bool { return !strings.ContainsAny(n, "0123456789") })
	if !strings.ContainsAny(name, "0123456789") {
		t.Errorf("with every plain name taken, got %q", name)
	}
}

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{"ctrl-p,ctrl-q": {16, 17}, "a,b": {'a', 'b'}, "ctrl-@,ctrl-_": {0, 31}} {
		got, err := parseDetachKeys(in)
		if err != nil || string(got) != string(want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab", ""} {
		if _, err := parseDetachKeys(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("parseDetachKeys(%q) error %v, want invalid", bad, err)
		}
	}
}

func TestDetachReader(t *testing.T) {
	for _, tc := range []struct {
		name, in, out string
		detached      bool
	}{
		{"plain", "hello", "hello", false},
		{"keys", "ab\x10\x11cd", "ab", true},
		{"half a sequence is passed on", "a\x10b", "a\x10b", false},
		{"a repeated first key", "\x10\x10\x11", "\x10", true},
		{"sequence at the end", "x\x10", "x\x10", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			detached := false
			d := &detachReader{r: strings.NewReader(tc.in), keys: []byte{16, 17}, detach: func() { detached = true; close(done) }, done: done}
			var got []byte
			buf := make([]byte, 1)
			for {
				n, err := d.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if string(got) != tc.out || detached != tc.detached {
				t.Errorf("read %q detached %v, want %q %v", got, detached, tc.out, tc.detached)
			}
		})
	}
}
