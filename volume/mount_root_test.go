package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/test/testutil"
)

func TestMountTmpfsAndBindVolumes(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	m, db := newManager(t, t.TempDir())
	defer db.Close()

	if _, err := m.Create(ctx, CreateRequest{Name: "scratch", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("hi"), 0o644)
	if _, err := m.Create(ctx, CreateRequest{Name: "hostdir", Options: map[string]string{"type": "none", "device": host, "o": "bind,ro"}}); err != nil {
		t.Fatal(err)
	}

	p, err := m.Mount(ctx, "scratch")
	if err != nil {
		t.Fatal(err)
	}
	defer unmountAll(p)
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(p))
	if err != nil || len(infos) != 1 || infos[0].FSType != "tmpfs" {
		t.Fatalf("scratch at %s: %v, %v", p, infos, err)
	}
	if _, err := m.Mount(ctx, "scratch"); err != nil {
		t.Errorf("second mount: %v", err)
	}
	if infos, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(p)); len(infos) != 1 {
		t.Errorf("mounted twice: %v", infos)
	}

	b, err := m.Mount(ctx, "hostdir")
	if err != nil {
		t.Fatal(err)
	}
	defer unmountAll(b)
	if data, err := os.ReadFile(filepath.Join(b, "hello")); err != nil || string(data) != "hi" {
		t.Errorf("bind volume reads %q, %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(b, "new"), nil, 0o644); err == nil {
		t.Errorf("the ro bind volume is writable")
	}

	// Two running users: the first one to stop leaves it mounted.
	db.Update(func(tx *store.Tx) error {
		for _, id := range []string{"c1", "c2"} {
			store.Put(tx, store.Containers, id, store.Container{ID: id, StartedAt: time.Now(), Mounts: []store.Mount{{Destination: "/s", Source: p, Volume: "scratch"}}})
		}
		return nil
	})
	if err := m.Unmount(ctx, "scratch", "c1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.Mounted(p); !ok {
		t.Errorf("unmounted while c2 runs")
	}
	db.Update(func(tx *store.Tx) error {
		for _, id := range []string{"c1", "c2"} {
			store.Put(tx, store.Containers, id, store.Container{ID: id, StartedAt: time.Now(), FinishedAt: time.Now(), Mounts: []store.Mount{{Destination: "/s", Source: p, Volume: "scratch"}}})
		}
		return nil
	})
	if err := m.Unmount(ctx, "scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.Mounted(p); ok {
		t.Errorf("still mounted after its last user stopped")
	}
	if err := m.Unmount(ctx, "hostdir", "c9"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "hello")); err != nil {
		t.Errorf("the bind volume's source: %v", err)
	}
}
