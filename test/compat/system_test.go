package compat

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/testutil"
)

// TestInfo: `docker info` prints berth's facts without errors or
// warnings berth could avoid, and its counts follow the containers.
func TestInfo(t *testing.T) {
	e := &engine{Berthd: testutil.StartBerthd(t, ""), t: t, cli: testutil.DockerCLI(t)}
	out, errOut, err := e.Run("", e.cli, "info")
	if err != nil {
		t.Fatalf("docker info: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("docker info:\n%s%s", out, errOut)
	// The only warnings are facts of this kernel's cgroups.
	for _, w := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if w != "" && !(strings.HasPrefix(w, "WARNING: No ") && strings.HasSuffix(w, " support")) {
			t.Errorf("docker info warns: %q", w)
		}
	}
	for _, want := range []string{"Storage Driver: overlay2", "Layer Store: berth overlay snapshots", "Docker Root Dir: " + e.Root, "Default Runtime: ", "Cgroup Version: ", "seccomp"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker info lacks %q:\n%s", want, out)
		}
	}
	var info struct {
		ServerVersion, OSType, Architecture, DockerRootDir, Driver, CgroupVersion, ID string
		NCPU, Containers, Images                                                      int
		MemTotal                                                                      int64
	}
	if err := json.Unmarshal([]byte(e.docker("info", "--format", "{{json .}}")), &info); err != nil {
		t.Fatal(err)
	}
	if info.OSType != "linux" || info.NCPU != runtime.NumCPU() || info.MemTotal <= 0 || info.DockerRootDir != e.Root ||
		info.Containers != 0 || info.Images != 0 || info.ID == "" || (info.CgroupVersion != "1" && info.CgroupVersion != "2") {
		t.Errorf("docker info: %+v", info)
	}
	// The same daemon keeps its ID across restarts.
	e.Stop()
	e.Start()
	if id := e.docker("info", "--format", "{{.ID}}"); id != info.ID {
		t.Errorf("ID changed across a restart: %s, then %s", info.ID, id)
	}
}

// TestSystemDF: images, containers and their sizes in `docker system df`
// and its verbose form.
func TestSystemDF(t *testing.T) {
	e := newEngine(t, "")
	e.docker("run", "--name", "writer", "busybox", "sh", "-c", "dd if=/dev/zero of=/big bs=1024 count=2048")
	out := e.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
	for _, want := range []string{"Images 1 1", "Containers 1 0", "Local Volumes 0 0", "Build Cache 0 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker system df lacks %q:\n%s", want, out)
		}
	}
	v := e.docker("system", "df", "-v")
	for _, want := range []string{"Images space usage:", "busybox", "Containers space usage:", "writer", "Local Volumes space usage:", "Build cache usage: 0B"} {
		if !strings.Contains(v, want) {
			t.Errorf("docker system df -v lacks %q:\n%s", want, v)
		}
	}
	// The container's 2 MiB file is in its writable layer.
	var du struct {
		Containers []struct {
			Names  []string
			SizeRw int64
		}
		Images []struct {
			Containers int64
			Size       int64
		}
		LayersSize int64
	}
	raw, _, err := e.Run("", "curl", "-sf", "--unix-socket", e.DockerSocket, "http://docker/v1.41/system/df")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &du); err != nil {
		t.Fatal(err)
	}
	if len(du.Containers) != 1 || du.Containers[0].SizeRw < 2<<20 {
		t.Errorf("containers: %+v, want writer with SizeRw ≥ 2 MiB", du.Containers)
	}
	if len(du.Images) != 1 || du.Images[0].Containers != 1 || du.Images[0].Size <= 0 || du.LayersSize < du.Images[0].Size {
		t.Errorf("images: %+v, layers %d", du.Images, du.LayersSize)
	}
	if got := e.docker("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}"); got != "1 0 0 1 1" {
		t.Errorf("docker info counts (containers, running, paused, stopped, images): %s, want 1 0 0 1 1", got)
	}
	e.docker("run", "-d", "--name", "frozen", "busybox", "sleep", "1000")
	e.docker("run", "-d", "--name", "busy", "busybox", "sleep", "1000")
	e.docker("pause", "frozen")
	if got := e.docker("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}"); got != "3 1 1 1" {
		t.Errorf("docker info counts (containers, running, paused, stopped): %s, want 3 1 1 1", got)
	}
	e.docker("unpause", "frozen")
}
