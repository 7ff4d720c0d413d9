package runtime

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/runtime/cgroupstats"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     560       8    0    0    0     0          0         0      560       8    0    0    0     0       0          0
  eth0: 1234567    1000    2    7    0     0          0         0   765432     900    1    3    0     0       0          0
 net1:       5       1    0    0    0     0          0         0        6       1    0    0    0     0       0          0
`

func TestParseNetDev(t *testing.T) {
	got, err := ParseNetDev(strings.NewReader(netDev))
	if err != nil {
		t.Fatal(err)
	}
	want := []InterfaceStats{
		{Name: "eth0", RxBytes: 1234567, RxErrors: 2, TxBytes: 765432, TxErrors: 1, RxPackets: 1000, RxDropped: 7, TxPackets: 900, TxDropped: 3},
		{Name: "net1", RxBytes: 5, TxBytes: 6, RxPackets: 1, TxPackets: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	n := &NetworkStats{Interfaces: got}
	if d, ok := n.Default(); !ok || d.Name != "eth0" {
		t.Errorf("Default = %+v, %v", d, ok)
	}
	for _, bad := range []string{"h1\nh2\neth0 1 2 3\n", "h1\nh2\neth0: 1 2 3\n", "h1\nh2\neth0: x 0 0 0 0 0 0 0 0 0 0 0\n"} {
		if _, err := ParseNetDev(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseNetDev(%q) did not fail", bad)
		}
	}
}

func TestAddSamples(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := cgroupstats.Sample{Time: t0, CPUNanos: 10, Pids: 1, Memory: cgroupstats.Memory{Usage: 100, WorkingSet: 80, RSS: 50, PageFaults: 3, MajorPageFaults: 1, Limit: 1000}}
	b := cgroupstats.Sample{Time: t0.Add(time.Millisecond), CPUNanos: 5, Pids: 2, Memory: cgroupstats.Memory{Usage: 10, WorkingSet: 10, RSS: 5, PageFaults: 1}}
	got := addSamples(addSamples(cgroupstats.Sample{}, a), b)
	want := cgroupstats.Sample{Time: t0.Add(time.Millisecond), CPUNanos: 15, Pids: 3, Memory: cgroupstats.Memory{Usage: 110, WorkingSet: 90, RSS: 55, PageFaults: 4, MajorPageFaults: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
