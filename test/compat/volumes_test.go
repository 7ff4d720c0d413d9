package compat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-runtime/berth/test/testutil"
)

// bareEngine is a berthd with the docker CLI and no image, for the
// tests that make no containers.
func bareEngine(t *testing.T) *engine {
	return &engine{Berthd: testutil.StartBerthd(t, ""), t: t, cli: testutil.DockerCLI(t)}
}

func TestVolumeLifecycle(t *testing.T) {
	e := bareEngine(t)
	if got := e.docker("volume", "create", "--label", "tier=db", "data1"); got != "data1" {
		t.Errorf("volume create printed %q", got)
	}
	e.docker("volume", "create", "data2")
	// Creating an existing volume returns it.
	if got := e.docker("volume", "create", "data1"); got != "data1" {
		t.Errorf("second volume create printed %q", got)
	}
	anon := e.docker("volume", "create") // a generated name
	if len(anon) != 64 {
		t.Errorf("anonymous volume name %q", anon)
	}

	var vols []struct {
		Name, Driver, Mountpoint, Scope, CreatedAt string
		Labels                                     map[string]string
	}
	if err := json.Unmarshal([]byte(e.docker("volume", "inspect", "data1", "data2")), &vols); err != nil {
		t.Fatal(err)
	}
	if len(vols) != 2 || vols[0].Name != "data1" || vols[0].Driver != "local" || vols[0].Scope != "local" ||
		vols[0].Labels["tier"] != "db" || vols[0].CreatedAt == "" ||
		vols[0].Mountpoint != filepath.Join(e.Root, "volumes", "data1", "_data") {
		t.Errorf("volume inspect: %+v", vols)
	}
	if err := os.WriteFile(filepath.Join(vols[0].Mountpoint, "kept"), []byte("yes"), 0o644); err != nil {
		t.Fatal(err)
	}

	ls := func(args ...string) []string {
		t.Helper()
		out := e.docker(append([]string{"volume", "ls", "-q"}, args...)...)
		names := strings.Fields(out)
		slices.Sort(names)
		return names
	}
	if got := ls(); !slices.Equal(got, []string{anon, "data1", "data2"}) {
		t.Errorf("volume ls: %v", got)
	}
	if got := ls("--filter", "label=tier=db"); !slices.Equal(got, []string{"data1"}) {
		t.Errorf("volume ls label=tier=db: %v", got)
	}
	if got := ls("--filter", "name=data"); !slices.Equal(got, []string{"data1", "data2"}) {
		t.Errorf("volume ls name=data: %v", got)
	}
	if got := ls("--filter", "dangling=true", "--filter", "driver=local"); len(got) != 3 {
		t.Errorf("volume ls dangling=true: %v", got)
	}
	if got := ls("--filter", "dangling=false"); len(got) != 0 {
		t.Errorf("volume ls dangling=false: %v", got)
	}
	if msg := e.dockerFails("volume", "ls", "--filter", "color=red"); !strings.Contains(msg, "invalid filter 'color'") {
		t.Errorf("volume ls with a bad filter: %s", msg)
	}

	// Bad input changes nothing.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "inspect", "nosuch"}, "get nosuch: no such volume"},
		{[]string{"volume", "rm", "nosuch"}, "get nosuch: no such volume"},
		{[]string{"volume", "create", "a/b"}, `create a/b: "a/b" includes invalid characters for a local volume name`},
		{[]string{"volume", "create", "--opt", "foo=1", "v3"}, `create v3: invalid option: "foo"`},
		{[]string{"volume", "create", "-d", "nfs", "v4"}, `create v4: error looking up volume plugin nfs: plugin "nfs" not found`},
	} {
		if msg := e.dockerFails(tc.args...); !strings.Contains(msg, tc.want) {
			t.Errorf("docker %s: %q, want %q", strings.Join(tc.args, " "), msg, tc.want)
		}
	}
	if got := ls(); len(got) != 3 {
		t.Errorf("bad requests changed the volumes: %v", got)
	}
	e.docker("volume", "rm", "-f", "nosuch")

	// The records and data survive a restart.
	e.Stop()
	e.Start()
	if got := ls(); !slices.Equal(got, []string{anon, "data1", "data2"}) {
		t.Errorf("volume ls after a restart: %v", got)
	}
	if data, err := os.ReadFile(filepath.Join(vols[0].Mountpoint, "kept")); err != nil || string(data) != "yes" {
		t.Errorf("data after a restart: %q, %v", data, err)
	}

	// prune removes only anonymous volumes (made for a container's
	// unnamed mount; a generated name alone is not one), unless --all.
	e.docker("volume", "prune", "-f")
	if got := ls(); len(got) != 3 {
		t.Errorf("volume prune removed named volumes: %v", got)
	}
	out := e.docker("volume", "prune", "-f", "--all", "--filter", "label=tier=db")
	if !strings.Contains(out, "data1") || strings.Contains(out, "data2") {
		t.Errorf("volume prune --all label=tier=db: %s", out)
	}
	out = e.docker("volume", "prune", "-f", "-a", "--filter", "label!=tier")
	if !strings.Contains(out, anon) || !strings.Contains(out, "data2") {
		t.Errorf("volume prune --all label!=tier: %s", out)
	}
	e.docker("volume", "create", "data2")
	e.docker("volume", "rm", "data2")
	if got := ls(); len(got) != 0 {
		t.Errorf("volume ls after rm: %v", got)
	}
	if _, err := os.Stat(filepath.Join(e.Root, "volumes", "data2")); !os.IsNotExist(err) {
		t.Errorf("data of a removed volume: %v", err)
	}
}

// TestVolumeDataOutlivesContainers writes into a named volume from one
// container and reads it from another, after a berthd restart too; a
// volume a container uses is not removed.
func TestVolumeDataOutlivesContainers(t *testing.T) {
	e := newEngine(t, "")
	e.docker("volume", "create", "shared")
	e.docker("run", "--rm", "-v", "shared:/data", "busybox", "sh", "-c", "echo persisted > /data/file")
	if out := e.docker("run", "--rm", "-v", "shared:/data:ro", "busybox", "cat", "/data/file"); out != "persisted" {
		t.Errorf("second container reads %q", out)
	}
	e.docker("create", "--name", "holder", "-v", "shared:/data", "busybox", "true")
	id := e.docker("inspect", "-f", "{{.Id}}", "holder")
	msg := e.dockerFails("volume", "rm", "shared")
	if !strings.Contains(msg, "remove shared: volume is in use - ["+id+"]") {
		t.Errorf("volume rm of a volume in use: %s", msg)
	}
	if got := e.docker("volume", "ls", "-q", "--filter", "dangling=false"); got != "shared" {
		t.Errorf("volume ls dangling=false: %q", got)
	}
	e.docker("volume", "prune", "-f", "--all")
	e.docker("volume", "inspect", "shared")

	e.Stop()
	e.Start()
	if out := e.docker("run", "--rm", "-v", "shared:/data", "busybox", "cat", "/data/file"); out != "persisted" {
		t.Errorf("after a restart the volume holds %q", out)
	}
	e.docker("rm", "holder")
	e.docker("volume", "rm", "shared")
	if out := e.docker("volume", "ls", "-q"); out != "" {
		t.Errorf("volumes left: %q", out)
	}

	// A tmpfs volume is mounted while a container uses it.
	e.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=4m", "scratch")
	if out := e.docker("run", "--rm", "-v", "scratch:/s", "busybox", "sh", "-c", "grep ' /s ' /proc/mounts"); !strings.Contains(out, "tmpfs") || !strings.Contains(out, "size=4096k") {
		t.Errorf("the tmpfs volume inside the container: %q", out)
	}
	if mounted, err := mountinfo.Mounted(filepath.Join(e.Root, "volumes", "scratch", "_data")); err != nil || mounted {
		t.Errorf("the tmpfs volume is still mounted on the host after its container: %v, %v", mounted, err)
	}
}
