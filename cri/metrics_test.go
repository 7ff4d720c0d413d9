package cri

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/store"
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
	ps := runtime.PodStats{
		Sandbox:       store.Sandbox{ID: "sb1", Name: "web", Namespace: "ns", Key: "web_ns_uid_1"},
		CPU:           runtime.CPUStats{Time: now, Valid: true, UsageNanos: 3_500_000_000},
		Memory:        runtime.MemoryStats{Time: now, Valid: true, Memory: cgroupstats.Memory{Usage: 10, WorkingSet: 8}},
		ProcessesTime: now, Processes: 3, ProcessesValid: true,
		Network: &runtime.NetworkStats{Time: now, Interfaces: []runtime.InterfaceStats{{Name: "eth0", RxBytes: 100, TxBytes: 50}}},
		Containers: []runtime.ContainerStats{
			{
				Container:     store.Container{ID: "c1", Name: "app", Image: "busybox"},
				CPU:           runtime.CPUStats{Time: now, Valid: true, UsageNanos: 1},
				Memory:        runtime.MemoryStats{Time: now, Valid: true},
				WritableLayer: &runtime.LayerUsage{Time: now, Mountpoint: "/var/lib/berth/containers", Bytes: 4096},
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
