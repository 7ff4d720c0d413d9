package oci

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestReadHost(t *testing.T) {
	h := ReadHost()
	if h.NofileHardLimit == 0 {
		t.Errorf("NofileHardLimit not read: %+v", h)
	}
	if h.MinOOMScoreAdj < -1000 || h.MinOOMScoreAdj > 1000 {
		t.Errorf("MinOOMScoreAdj out of range: %+v", h)
	}
	if h.CapLastCap == 0 {
		t.Errorf("CapLastCap not read: %+v", h)
	}
	t.Logf("%+v", h)
}

func TestHostDevicesAt(t *testing.T) {
	devs, err := hostDevicesAt("/dev/null")
	if err != nil {
		t.Skipf("no /dev/null here: %v", err)
	}
	if len(devs) != 1 || devs[0].Path != "/dev/null" || devs[0].Type != "c" || devs[0].Major != 1 || devs[0].Minor != 3 {
		t.Errorf("/dev/null: %+v", devs)
	}

	// Through a symlink, the path stays the one asked for.
	dir := t.TempDir()
	link := filepath.Join(dir, "null")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	devs, err = hostDevicesAt(link)
	if err != nil || len(devs) != 1 || devs[0].Path != link || devs[0].Minor != 3 {
		t.Errorf("symlink: %+v, %v", devs, err)
	}

	// A directory with a regular file and a symlink holds no device.
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	devs, err = hostDevicesAt(dir)
	if err != nil || len(devs) != 0 {
		t.Errorf("dir: %+v, %v", devs, err)
	}

	if _, err := hostDevicesAt(filepath.Join(dir, "file")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("regular file: err = %v, want ErrInvalidArgument", err)
	}
}

func TestAllHostDevices(t *testing.T) {
	devs, err := allHostDevices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if filepath.Dir(d.Path) == "/dev/pts" || d.Path == "/dev/console" || (d.Type != "c" && d.Type != "b") {
			t.Errorf("unexpected device %+v", d)
		}
	}
	t.Logf("%d host devices", len(devs))
}
