package cri

import (
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/test/testutil"
)

// Every metric value must match a descriptor by name and label count, or
// the kubelet's collector drops it (prometheus.NewConstMetric fails).
func TestPodMetricsMatchDescriptors(t *testing.T) {
	descs := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range metricDescriptors() {
		descs[d.Name] = d
	}
	if len(descs) != len(metricDefs) || len(metricOrder) != len(metricDefs) {
		t.Fatalf("%d descriptors, %d defs, %d ordered", len(descs), len(metricDefs), len(metricOrder))
	}
	now := time.Now()
	ps := sandbox.PodStats{
		Sandbox:       store.Sandbox{ID: "sb1", Name: "web", Namespace: "ns", Key: "web_ns_uid_1"},
		CPU:           runtime.CPUStats{Time: now, Valid: true, UsageNanos: 3_500_000_000},
		Memory:        runtime.MemoryStats{Time: now, Valid: true, Memory: cgroupstats.Memory{Usage: 10, WorkingSet: 8}},
		ProcessesTime: now, Processes: 3, ProcessesValid: true,
		Network: &sandbox.NetworkStats{Time: now, Interfaces: []sandbox.InterfaceStats{{Name: "eth0", RxBytes: 100, TxBytes: 50}}},
		Detail:  &cgroupstats.Detail{Time: now, Tasks: cgroupstats.Tasks{HasProcs: true, Processes: 2, FileDescriptors: 9}},
		Containers: []runtime.ContainerStats{
			{
				Container: store.Container{ID: "c1", Name: "app", Image: "busybox", StartedAt: now.Add(-time.Minute)},
				CPU:       runtime.CPUStats{Time: now, Valid: true, UsageNanos: 1},
				Memory:    runtime.MemoryStats{Time: now, Valid: true},
				WritableLayer: &runtime.LayerUsage{Time: now, Mountpoint: "/var/lib/berth/containers", Bytes: 4096,
					HasFs: true, Capacity: 1 << 30, InodesTotal: 1000, InodesFree: 900},
				Detail: &cgroupstats.Detail{
					Time: now,
					CPU: cgroupstats.CPUDetail{HasUsage: true, UserNanos: 2_000_000_000, HasThrottling: true, Periods: 10,
						ThrottledPeriods: 4, ThrottledNanos: 3_000_000_000, HasSpec: true, PeriodMicros: 100000, Shares: 1024},
					Memory: cgroupstats.MemoryDetail{Has: true, Cache: 5, OOMKills: 1},
					Tasks:  cgroupstats.Tasks{HasPids: true, Threads: 3, HasProcs: true, Processes: 1, FileDescriptors: 4, Sockets: 1},
					IO: []cgroupstats.IODevice{{Device: "/dev/vda", Major: 254, Minor: 0,
						Bytes: map[string]uint64{"Read": 4096, "Write": 8192, "Total": 12288}, Ops: map[string]uint64{"Read": 1, "Write": 2}}},
				},
			},
			{Container: store.Container{ID: "c2", Name: "exited"}, CPU: runtime.CPUStats{Time: now}, Memory: runtime.MemoryStats{Time: now}},
		},
	}
	pm := toPodMetrics(ps)
	seen := map[string]bool{}
	check := func(ms []*runtimeapi.Metric) {
		for _, m := range ms {
			d, ok := descs[m.Name]
			if !ok {
				t.Errorf("metric %s has no descriptor", m.Name)
				continue
			}
			if len(m.LabelValues) != len(d.LabelKeys) {
				t.Errorf("metric %s: %d label values for keys %v", m.Name, len(m.LabelValues), d.LabelKeys)
			}
			if m.Timestamp != now.UnixNano() {
				t.Errorf("metric %s: timestamp %d", m.Name, m.Timestamp)
			}
			seen[m.Name] = true
		}
	}
	check(pm.Metrics)
	if len(pm.ContainerMetrics) != 2 {
		t.Fatalf("%d container metrics", len(pm.ContainerMetrics))
	}
	for _, cm := range pm.ContainerMetrics {
		check(cm.Metrics)
	}
	if len(pm.ContainerMetrics[1].Metrics) != 0 {
		t.Errorf("a container without figures has metrics: %v", pm.ContainerMetrics[1].Metrics)
	}
	for name := range metricDefs {
		if !seen[name] {
			t.Errorf("descriptor %s never has a value", name)
		}
	}
	for _, m := range pm.Metrics {
		if m.Name == mCPUUsageSeconds && m.Value.Value != 3 {
			t.Errorf("cpu seconds = %d, want 3", m.Value.Value)
		}
	}
	// No two samples of a metric share their label values: the kubelet's
	// registry rejects a duplicate.
	dup := map[string]bool{}
	for _, ms := range [][]*runtimeapi.Metric{pm.Metrics, pm.ContainerMetrics[0].Metrics} {
		for _, m := range ms {
			k := m.Name + fmt.Sprint(m.LabelValues)
			if dup[k] {
				t.Errorf("duplicate sample %s", k)
			}
			dup[k] = true
		}
	}
	want := map[string]uint64{
		mCPUThrottledSeconds + "[app c1 busybox  ns web]":                    3,
		mCPUPeriod + "[app c1 busybox  ns web]":                              100000,
		mStartTime + "[app c1 busybox  ns web]":                              uint64(now.Add(-time.Minute).Unix()),
		mProcesses + "[ sb1  web_ns_uid_1 ns web]":                           3, // the pod's task count
		mProcesses + "[app c1 busybox  ns web]":                              1,
		mBlkioDeviceUsage + "[app c1 busybox  ns web /dev/vda 254 0 Total]":  12288,
		mFsWritesBytes + "[app c1 busybox  ns web /dev/vda]":                 8192,
		mFsInodesFree + "[app c1 busybox  ns web /var/lib/berth/containers]": 900,
		mMemoryFailures + "[app c1 busybox  ns web pgfault hierarchy]":       0,
		mFileDescriptors + "[ sb1  web_ns_uid_1 ns web]":                     9,
		mNetRxPackets + "[ sb1  web_ns_uid_1 ns web eth0]":                   0,
		mLastSeen + "[ sb1  web_ns_uid_1 ns web]":                            uint64(now.Unix()),
	}
	for _, ms := range [][]*runtimeapi.Metric{pm.Metrics, pm.ContainerMetrics[0].Metrics} {
		for _, m := range ms {
			k := m.Name + fmt.Sprint(m.LabelValues)
			if v, ok := want[k]; ok {
				if m.Value.Value != v {
					t.Errorf("%s = %d, want %d", k, m.Value.Value, v)
				}
				delete(want, k)
			}
		}
	}
	for k := range want {
		t.Errorf("no sample %s", k)
	}
}

func TestMetricDescriptorsCoverCritest(t *testing.T) {
	descs := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range metricDescriptors() {
		if d.Help == "" || len(d.LabelKeys) == 0 {
			t.Errorf("descriptor %v has no help or label keys", d)
		}
		descs[d.Name] = d
	}
	for _, name := range testutil.CritestMetrics {
		if descs[name] == nil {
			t.Errorf("no descriptor for %s", name)
		}
	}
}

func TestToContainerStatsNotRunning(t *testing.T) {
	now := time.Now()
	st := toContainerStats(runtime.ContainerStats{
		Container: store.Container{ID: "c"},
		CPU:       runtime.CPUStats{Time: now},
		Memory:    runtime.MemoryStats{Time: now},
	})
	if st.Cpu.Timestamp == 0 || st.Memory.Timestamp == 0 {
		t.Error("no timestamps")
	}
	if st.Cpu.UsageCoreNanoSeconds != nil || st.Memory.WorkingSetBytes != nil || st.WritableLayer != nil {
		t.Errorf("figures for a container that does not run: %v", st)
	}
	// A first sample: cumulative figure, no rate.
	st = toContainerStats(runtime.ContainerStats{CPU: runtime.CPUStats{Time: now, Valid: true, UsageNanos: 5}})
	if st.Cpu.UsageCoreNanoSeconds.GetValue() != 5 || st.Cpu.UsageNanoCores != nil {
		t.Errorf("cpu = %v", st.Cpu)
	}
}
