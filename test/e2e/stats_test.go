package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// TestStats checks the stats and metrics RPCs against real cgroups, a real
// writable layer and a real pod network.
func TestStats(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "stats")
	podID := runPod(t, d, pod)

	// 32 MiB in the pod's /dev/shm (tmpfs pages are charged to the
	// writer's memory cgroup and are not file cache, so they stay in the
	// working set), then five seconds of busy loop.
	hogCfg := containerConfig("hog", img,
		`dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null; end=$(($(date +%s)+5)); while [ $(date +%s) -lt $end ]; do :; done; sleep 1000`)
	hog := runContainer(t, d, podID, pod, hogCfg)
	// Limits as critest's metrics spec gives its container.
	otherCfg := containerConfig("other", img, "sleep 1000")
	otherCfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, MemoryLimitInBytes: 256 << 20,
	}}
	other := runContainer(t, d, podID, pod, otherCfg)

	const mib = 1 << 20
	var s1 *runtimeapi.ContainerStats
	deadline := time.Now().Add(20 * time.Second)
	for {
		s1 = containerStats(t, d, hog)
		if ws := s1.GetMemory().GetWorkingSetBytes(); ws != nil && ws.Value >= 32*mib {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("working set never reached 32 MiB: %v", s1.GetMemory())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	s2 := containerStats(t, d, hog)
	t.Logf("hog: cpu %v -> %v ns, %v nano cores; memory %v", s1.Cpu.GetUsageCoreNanoSeconds().GetValue(),
		s2.Cpu.GetUsageCoreNanoSeconds().GetValue(), s2.Cpu.GetUsageNanoCores().GetValue(), s2.Memory)
	if s2.Cpu.GetUsageCoreNanoSeconds().GetValue() <= s1.Cpu.GetUsageCoreNanoSeconds().GetValue() {
		t.Errorf("CPU usage did not rise while the container spins: %v then %v", s1.Cpu, s2.Cpu)
	}
	// The busy loop uses about one core; accept a loaded machine.
	if nc := s2.Cpu.GetUsageNanoCores(); nc == nil || nc.Value < 100_000_000 {
		t.Errorf("usage_nano_cores on the second call = %v, want ≥ 0.1 core", nc)
	}
	if s2.Cpu.Timestamp <= s1.Cpu.Timestamp {
		t.Errorf("CPU timestamps did not advance: %d, %d", s1.Cpu.Timestamp, s2.Cpu.Timestamp)
	}
	m := s2.Memory
	if m.GetUsageBytes().GetValue() < m.GetWorkingSetBytes().GetValue() || m.RssBytes == nil || m.PageFaults == nil || m.MajorPageFaults == nil {
		t.Errorf("memory figures: %v", m)
	}
	if s2.Attributes.GetId() != hog || s2.Attributes.GetMetadata().GetName() != "hog" || s2.Attributes.Labels["ctr"] != "hog" {
		t.Errorf("attributes: %v", s2.Attributes)
	}

	// The writable layer grows when the container writes a file.
	before := containerStats(t, d, other).WritableLayer
	if before == nil || before.FsId.GetMountpoint() == "" || before.InodesUsed == nil {
		t.Fatalf("writable layer: %v", before)
	}
	if _, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: other,
		Cmd: []string{"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null && sync"}, Timeout: 20}); err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	after := containerStats(t, d, other).WritableLayer
	if after.UsedBytes.Value < before.UsedBytes.Value+4*mib || after.InodesUsed.Value <= before.InodesUsed.Value {
		t.Errorf("writable layer %v -> %v after writing 4 MiB", before, after)
	}

	// Filters.
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.ContainerStatsFilter
		want   int
	}{
		{"all", nil, 2},
		{"id prefix", &runtimeapi.ContainerStatsFilter{Id: hog[:10]}, 1},
		{"pod", &runtimeapi.ContainerStatsFilter{PodSandboxId: podID}, 2},
		{"other pod", &runtimeapi.ContainerStatsFilter{PodSandboxId: "ffffffff"}, 0},
		{"label", &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"ctr": "other"}}, 1},
		{"label miss", &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"ctr": "none"}}, 0},
	} {
		resp, err := d.RT.ListContainerStats(ctxT(t), &runtimeapi.ListContainerStatsRequest{Filter: tc.filter})
		if err != nil {
			t.Fatalf("ListContainerStats %s: %v", tc.name, err)
		}
		if len(resp.Stats) != tc.want {
			t.Errorf("ListContainerStats %s: %d stats, want %d", tc.name, len(resp.Stats), tc.want)
		}
	}
	stream, err := d.RT.StreamContainerStats(ctxT(t), &runtimeapi.StreamContainerStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("StreamContainerStats: %v", err)
		}
		n += len(r.ContainerStats)
	}
	if n != 2 {
		t.Errorf("StreamContainerStats sent %d stats, want 2", n)
	}

	// Pod stats: memory, processes, containers, and network counters
	// that grow with traffic from the host.
	ps1 := podStats(t, d, podID)
	if ps1.Linux.Memory.GetWorkingSetBytes().GetValue() < 32*mib {
		t.Errorf("pod working set %v < 32 MiB", ps1.Linux.Memory)
	}
	if ps1.Linux.Cpu.GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Errorf("pod CPU: %v", ps1.Linux.Cpu)
	}
	if pc := ps1.Linux.Process.GetProcessCount().GetValue(); pc < 3 {
		t.Errorf("pod process count %d, want ≥ 3 (infra, hog, other)", pc)
	}
	if len(ps1.Linux.Containers) != 2 {
		t.Errorf("pod stats hold %d containers", len(ps1.Linux.Containers))
	}
	if ps1.Linux.Network.GetDefaultInterface().GetName() != "eth0" {
		t.Fatalf("pod network: %v", ps1.Linux.Network)
	}
	st, err := d.RT.PodSandboxStatus(ctxT(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		// A closed port: a SYN in, a RST out.
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(st.Status.Network.Ip, "9"), time.Second); err == nil {
			c.Close()
		}
	}
	// More than cgroupstats.MinInterval after ps1, so a rate is computed.
	time.Sleep(300 * time.Millisecond)
	ps2 := podStats(t, d, podID)
	e1, e2 := ps1.Linux.Network.DefaultInterface, ps2.Linux.Network.DefaultInterface
	t.Logf("eth0: rx %d -> %d, tx %d -> %d", e1.RxBytes.Value, e2.RxBytes.Value, e1.TxBytes.Value, e2.TxBytes.Value)
	if e2.RxBytes.Value <= e1.RxBytes.Value || e2.TxBytes.Value <= e1.TxBytes.Value {
		t.Errorf("eth0 counters did not grow with traffic: %v -> %v", e1, e2)
	}
	if ps2.Linux.Cpu.GetUsageNanoCores() == nil {
		t.Errorf("pod usage_nano_cores absent on the second call")
	}
	for _, tc := range []struct {
		filter *runtimeapi.PodSandboxStatsFilter
		want   int
	}{
		{nil, 1},
		{&runtimeapi.PodSandboxStatsFilter{Id: podID[:8]}, 1},
		{&runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "stats"}}, 1},
		{&runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "nope"}}, 0},
	} {
		resp, err := d.RT.ListPodSandboxStats(ctxT(t), &runtimeapi.ListPodSandboxStatsRequest{Filter: tc.filter})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Stats) != tc.want {
			t.Errorf("ListPodSandboxStats %v: %d, want %d", tc.filter, len(resp.Stats), tc.want)
		}
	}

	// Metrics, by critest's rules (cri-tools pkg/validate): a descriptor
	// with help and label keys for every expected name, a value in the
	// pod for every one not optional, as many label values as keys.
	// 1 MiB written past the page cache, which the kernel charges to the
	// container's blkio (v1) or io (v2) cgroup where it accounts I/O
	// per cgroup at all (v1 blkio on recent kernels does not without a
	// throttle limit: the block I/O metrics are then left out).
	direct, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: other,
		Cmd: []string{"sh", "-c", "dd if=/dev/zero of=/direct bs=4096 count=256 oflag=direct"}, Timeout: 20})
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	got := checkPodMetrics(t, d, podID)
	if v, ok := got[metricKey{"container_fs_writes_bytes_total", "other"}]; ok && direct.ExitCode == 0 && v < 1<<20 {
		t.Errorf("container_fs_writes_bytes_total{container=other} = %d after a 1 MiB direct write", v)
	}
	for _, tc := range []struct {
		name, container string
		min, max        uint64
	}{
		{"container_memory_working_set_bytes", "hog", 32 * mib, 1 << 40},
		{"container_network_receive_bytes_total", "", 1, 1 << 40},
		{"container_network_receive_packets_total", "", 1, 1 << 40},
		{"container_fs_usage_bytes", "other", 4 * mib, 1 << 40},
		{"container_fs_inodes_total", "other", 1, 1 << 62},
		{"container_fs_limit_bytes", "other", 1 << 20, 1 << 62},
		{"container_spec_cpu_period", "other", 100000, 100000},
		{"container_spec_memory_limit_bytes", "other", 256 * mib, 256 * mib},
		{"container_spec_cpu_shares", "other", 2, 262144},
		{"container_cpu_user_seconds_total", "hog", 0, 1 << 20},
		{"container_processes", "other", 1, 2},
		{"container_threads", "other", 1, 2},
		{"container_file_descriptors", "other", 1, 1 << 20},
		{"container_memory_failures_total", "hog", 1, 1 << 40},
		{"container_start_time_seconds", "other", uint64(time.Now().Add(-5 * time.Minute).Unix()), uint64(time.Now().Unix())},
		{"container_last_seen", "other", uint64(time.Now().Add(-time.Minute).Unix()), uint64(time.Now().Add(time.Minute).Unix())},
	} {
		v, ok := got[metricKey{tc.name, tc.container}]
		if !ok || v < tc.min || v > tc.max {
			t.Errorf("%s{container=%q} = %d (present %v), want in [%d, %d]", tc.name, tc.container, v, ok, tc.min, tc.max)
		}
	}
	user, sys := got[metricKey{"container_cpu_user_seconds_total", "hog"}], got[metricKey{"container_cpu_system_seconds_total", "hog"}]
	if total := got[metricKey{"container_cpu_usage_seconds_total", "hog"}]; user+sys > total+2 || total > user+sys+2 {
		t.Errorf("hog cpu: user %d s + system %d s against %d s in all", user, sys, total)
	}

	// A stopped container: timestamps, no figures, no error.
	if _, err := d.RT.StopContainer(ctxT(t), &runtimeapi.StopContainerRequest{ContainerId: other, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	stopped := containerStats(t, d, other)
	if stopped.Cpu.GetTimestamp() == 0 || stopped.Memory.GetTimestamp() == 0 || stopped.Cpu.UsageCoreNanoSeconds != nil || stopped.Memory.WorkingSetBytes != nil {
		t.Errorf("stats of a stopped container: %v", stopped)
	}

	// Unknown ids.
	if _, err := d.RT.ContainerStats(ctxT(t), &runtimeapi.ContainerStatsRequest{ContainerId: "ffffffffffff"}); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStats of an unknown id: %v, want NotFound", err)
	}
	if _, err := d.RT.PodSandboxStats(ctxT(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "ffffffffffff"}); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStats of an unknown id: %v, want NotFound", err)
	}
}

// optionalMetrics need not have a value: the block I/O figures, which a
// host without I/O accounted to the container does not give.
var optionalMetrics = map[string]bool{
	"container_blkio_device_usage_total": true,
	"container_fs_reads_bytes_total":     true, "container_fs_reads_total": true,
	"container_fs_writes_bytes_total": true, "container_fs_writes_total": true,
}

// metricKey is a metric of the pod ("") or of one container, by name.
type metricKey struct{ name, container string }

// checkPodMetrics applies critest's rules to the metrics of podID and
// returns the largest value of each metric per container label.
func checkPodMetrics(t *testing.T, d *daemon, podID string) map[metricKey]uint64 {
	t.Helper()
	descs, err := d.RT.ListMetricDescriptors(ctxT(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, dsc := range descs.Descriptors {
		if dsc.Help == "" || len(dsc.LabelKeys) == 0 {
			t.Errorf("descriptor %v: no help or label keys", dsc)
		}
		keys[dsc.Name] = len(dsc.LabelKeys)
	}
	for _, name := range testutil.CritestMetrics {
		if _, ok := keys[name]; !ok {
			t.Errorf("no descriptor for %s", name)
		}
	}
	metrics, err := d.RT.ListPodSandboxMetrics(ctxT(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var pm *runtimeapi.PodSandboxMetrics
	for _, p := range metrics.PodMetrics {
		if p.PodSandboxId == podID {
			pm = p
		}
	}
	if pm == nil {
		t.Fatalf("ListPodSandboxMetrics: no metrics for %s: %v", podID, metrics.PodMetrics)
	}
	got := map[metricKey]uint64{}
	seen := map[string]bool{}
	check := func(ms []*runtimeapi.Metric) {
		for _, m := range ms {
			n, ok := keys[m.Name]
			if !ok || n != len(m.LabelValues) || m.Timestamp == 0 || m.Value == nil {
				t.Errorf("metric %v does not fit its descriptor (%d keys)", m, n)
				continue
			}
			k := metricKey{m.Name, m.LabelValues[0]}
			got[k] = max(got[k], m.Value.GetValue())
			seen[m.Name] = true
		}
	}
	check(pm.Metrics)
	for _, cm := range pm.ContainerMetrics {
		check(cm.Metrics)
	}
	for _, name := range testutil.CritestMetrics {
		if !seen[name] && !optionalMetrics[name] {
			t.Errorf("no value for metric %s", name)
		}
	}
	for name := range optionalMetrics {
		t.Logf("optional metric %s has values: %v", name, seen[name])
	}
	return got
}

func containerStats(t *testing.T, d *daemon, id string) *runtimeapi.ContainerStats {
	t.Helper()
	resp, err := d.RT.ContainerStats(ctxT(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStats: %v", err)
	}
	return resp.Stats
}

func podStats(t *testing.T, d *daemon, id string) *runtimeapi.PodSandboxStats {
	t.Helper()
	resp, err := d.RT.PodSandboxStats(ctxT(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	return resp.Stats
}

// TestPodStatsCgroupParent checks a pod placed under a cgroup parent, as
// the kubelet places every pod: the pod's figures come from that cgroup.
func TestPodStatsCgroupParent(t *testing.T) {
	parent := fmt.Sprintf("/berthstats%d/podparented", os.Getpid())
	cleanupCgroupParent(t, parent) // registered first: runs after the daemon's cleanup
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "parented")
	pod.Linux.CgroupParent = parent
	podID := runPod(t, d, pod)
	runContainer(t, d, podID, pod, containerConfig("app", img,
		`dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>/dev/null; sleep 1000`))

	deadline := time.Now().Add(20 * time.Second)
	for {
		ps := podStats(t, d, podID)
		l := ps.Linux
		if l.Memory.GetWorkingSetBytes().GetValue() >= 8<<20 {
			if l.Process.GetProcessCount().GetValue() < 2 || l.Cpu.GetUsageCoreNanoSeconds() == nil || len(l.Containers) != 1 {
				t.Errorf("pod stats under a cgroup parent: %v", l)
			}
			// The pod's own cgroup gives the detailed metrics too.
			got := checkPodMetrics(t, d, podID)
			for _, name := range []string{"container_threads", "container_file_descriptors", "container_memory_cache", "container_last_seen"} {
				if _, ok := got[metricKey{name, ""}]; !ok {
					t.Errorf("no pod-level %s under a cgroup parent", name)
				}
			}
			if got[metricKey{"container_threads", ""}] < 2 {
				t.Errorf("pod threads = %d, want ≥ 2", got[metricKey{"container_threads", ""}])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod working set never reached 8 MiB: %v", l.Memory)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
