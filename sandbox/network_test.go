package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// fakeNetwork hands out 10.0.<n>.2 on the nth network attached and
// records the calls; fail makes Setup or Detach of a network fail.
type fakeNetwork struct {
	calls []string
	fail  map[string]error // "setup NET" or "detach NET" → error
	n     int
}

func (f *fakeNetwork) Setup(_ context.Context, pod cni.PodNetwork) (cni.Result, error) {
	f.calls = append(f.calls, fmt.Sprintf("setup %s %s %s", pod.ID, pod.Network, pod.Interface))
	if err := f.fail["setup "+pod.Network]; err != nil {
		return cni.Result{}, err
	}
	f.n++
	return cni.Result{Network: pod.Network, Interface: pod.Interface, IPs: []net.IP{net.IPv4(10, 0, byte(f.n), 2)}}, nil
}

func (f *fakeNetwork) Detach(_ context.Context, pod cni.PodNetwork) error {
	f.calls = append(f.calls, fmt.Sprintf("detach %s %s %s", pod.ID, pod.Network, pod.Interface))
	return f.fail["detach "+pod.Network]
}

func (f *fakeNetwork) Teardown(_ context.Context, pod cni.PodNetwork) error {
	f.calls = append(f.calls, "teardown "+pod.ID)
	return nil
}

func (f *fakeNetwork) Ready() error { return nil }

func networkManager(t *testing.T, pods ...store.Sandbox) (*Manager, *fakeNetwork) {
	t.Helper()
	fn := &fakeNetwork{}
	return &Manager{db: podStore(t, pods...), net: fn, log: slog.New(slog.DiscardHandler)}, fn
}

// podStore is a store holding pods.
func podStore(t *testing.T, pods ...store.Sandbox) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *store.Tx) error {
		for _, sb := range pods {
			if err := store.Put(tx, store.Sandboxes, sb.ID, sb); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConnectDisconnect(t *testing.T) {
	ctx := context.Background()
	up := time.Unix(1, 0)
	m, fn := networkManager(t,
		store.Sandbox{ID: "pod", NetNS: "/run/netns/pod", IPs: []string{"10.88.0.2"}, ReadyAt: up},
		store.Sandbox{ID: "stopped", ReadyAt: up, StoppedAt: up},
		store.Sandbox{ID: "hostnet", HostNetwork: true, ReadyAt: up},
	)
	records := func() []store.NetworkAttachment {
		sb, err := m.Get(ctx, "pod")
		if err != nil {
			t.Fatal(err)
		}
		return sb.Networks
	}

	a, err := m.Connect(ctx, "pod", ConnectRequest{Network: "front", Aliases: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Connect(ctx, "pod", ConnectRequest{Network: "back"}); err != nil {
		t.Fatal(err)
	}
	want := []store.NetworkAttachment{
		{Network: "front", Interface: "eth1", IPs: []string{"10.0.1.2"}, Aliases: []string{"web"}},
		{Network: "back", Interface: "eth2", IPs: []string{"10.0.2.2"}},
	}
	if diff := cmp.Diff(want[0], a); diff != "" {
		t.Errorf("Connect's attachment (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, records()); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}

	// Refusals change nothing and call no plugin.
	fn.calls = nil
	for _, tc := range []struct {
		id, network string
		want        error
	}{
		{"pod", "front", errdefs.ErrAlreadyExists},
		{"pod", "", errdefs.ErrAlreadyExists}, // made on the pod network
		{"stopped", "front", errdefs.ErrFailedPrecondition},
		{"hostnet", "front", errdefs.ErrFailedPrecondition},
		{"nosuch", "front", errdefs.ErrNotFound},
	} {
		if _, err := m.Connect(ctx, tc.id, ConnectRequest{Network: tc.network}); !errors.Is(err, tc.want) {
			t.Errorf("Connect(%s, %q) = %v, want %v", tc.id, tc.network, err, tc.want)
		}
	}
	if fn.calls != nil {
		t.Errorf("refused connects called the network: %v", fn.calls)
	}

	// A failing ADD records nothing.
	fn.fail = map[string]error{"setup bad": fmt.Errorf("no such network: %w", errdefs.ErrNotFound)}
	if _, err := m.Connect(ctx, "pod", ConnectRequest{Network: "bad"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Connect to a failing network = %v, want its error", err)
	}
	if diff := cmp.Diff(want, records()); diff != "" {
		t.Errorf("after a failed connect (-want +got):\n%s", diff)
	}

	// Disconnect one; the other stays, and its interface is not reused
	// while taken.
	fn.calls = nil
	if err := m.Disconnect(ctx, "pod", "front"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"detach pod front eth1"}, fn.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:], records()); diff != "" {
		t.Errorf("after disconnect (-want +got):\n%s", diff)
	}
	if a, err := m.Connect(ctx, "pod", ConnectRequest{Network: "front"}); err != nil || a.Interface != "eth1" {
		t.Errorf("reconnect = %+v, %v; want eth1 again", a, err)
	}

	for _, tc := range []struct {
		network string
		want    error
	}{
		{"nosuch", errdefs.ErrNotFound},
	} {
		if err := m.Disconnect(ctx, "pod", tc.network); !errors.Is(err, tc.want) {
			t.Errorf("Disconnect(%q) = %v, want %v", tc.network, err, tc.want)
		}
	}

	// The network the pod was made on comes off and back on eth0, with
	// new aliases (compose 1.29 does that to every container it makes).
	fn.calls = nil
	if err := m.Disconnect(ctx, "pod", ""); err != nil {
		t.Fatal(err)
	}
	if sb, _ := m.Get(ctx, "pod"); !sb.NetworkDetached || sb.IPs != nil {
		t.Errorf("after disconnecting the first network: detached %v, IPs %v", sb.NetworkDetached, sb.IPs)
	}
	if err := m.Disconnect(ctx, "pod", ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Disconnect of the first network = %v, want not found", err)
	}
	if a, err := m.Connect(ctx, "pod", ConnectRequest{Network: "", Aliases: []string{"web"}}); err != nil || a.Interface != "eth0" {
		t.Errorf("reconnect of the first network = %+v, %v; want eth0", a, err)
	}
	if sb, _ := m.Get(ctx, "pod"); sb.NetworkDetached || len(sb.IPs) != 1 || len(sb.Aliases) != 1 || sb.Aliases[0] != "web" {
		t.Errorf("after reconnecting the first network: %+v", sb)
	}
	if diff := cmp.Diff([]string{"detach pod  eth0", "setup pod  eth0"}, fn.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// A failing DEL keeps the record, so it can be tried again.
	fn.fail = map[string]error{"detach back": errors.New("boom")}
	if err := m.Disconnect(ctx, "pod", "back"); err == nil {
		t.Error("Disconnect with a failing DEL succeeded")
	}
	if got := records(); len(got) != 2 {
		t.Errorf("after a failed disconnect: %+v, want both attachments kept", got)
	}
}
