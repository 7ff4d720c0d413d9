package daemon

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/cri"
)

// TestCRIConfig checks the part of the config the CRI door gets: the
// runtime handlers in a stable order, the cgroup driver, the directories.
func TestCRIConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Root, cfg.State = "/r", "/s"
	cfg.CgroupDriver = "systemd"
	cfg.Runtimes = map[string]config.Runtime{"runc": {Path: "runc"}, "crun": {Path: "crun"}, "kata": {Path: "kata"}}
	got := criConfig(cfg)
	if got.Info == nil {
		t.Error("no config for Status's verbose info")
	}
	got.Info = nil
	want := cri.Config{RuntimeHandlers: []string{"crun", "kata", "runc"}, SystemdCgroup: true, StateDir: "/s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	cfg.CgroupDriver = "cgroupfs"
	if criConfig(cfg).SystemdCgroup {
		t.Error("cgroupfs driver read as systemd")
	}
}
