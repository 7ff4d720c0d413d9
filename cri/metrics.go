package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
)

// The kubelet (PodAndContainerStatsFromCRI) serves /metrics/cadvisor from
// ListMetricDescriptors and ListPodSandboxMetrics: it makes one Prometheus
// descriptor per MetricDescriptor and one sample per Metric, with the
// label values in the order of the descriptor's label keys. berth exports
// the cAdvisor metrics the kubelet, HPA and dashboards read, under
// cAdvisor's names and labels. The values are read on request from the
// same figures as ListPodSandboxStats (runtime.PodStats), never polled.
//
// Label values: container is the container's CRI name ("" for the pod's
// own figures, as cAdvisor gives the pod cgroup), id the container (or
// sandbox) id, image the image as the request named it, name the CRI's
// unique name, namespace and pod the pod's. The CRI carries values as
// uint64, so container_cpu_usage_seconds_total is whole seconds.

// metricLabelKeys are the labels of every metric; some add one more.
var metricLabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

type metricDef struct {
	help string
	typ  runtimeapi.MetricType
	// extra is a label key after metricLabelKeys ("" for none).
	extra string
}

// Metric names, as cAdvisor names them.
const (
	mCPUUsageSeconds  = "container_cpu_usage_seconds_total"
	mMemoryUsage      = "container_memory_usage_bytes"
	mMemoryWorkingSet = "container_memory_working_set_bytes"
	mMemoryRSS        = "container_memory_rss"
	mMemoryLimit      = "container_spec_memory_limit_bytes"
	mFsUsage          = "container_fs_usage_bytes"
	mProcesses        = "container_processes"
	mNetRxBytes       = "container_network_receive_bytes_total"
	mNetTxBytes       = "container_network_transmit_bytes_total"
	mNetRxErrors      = "container_network_receive_errors_total"
	mNetTxErrors      = "container_network_transmit_errors_total"
	labelInterface    = "interface"
	labelDevice       = "device"
	counter, gauge    = runtimeapi.MetricType_COUNTER, runtimeapi.MetricType_GAUGE
	nanosPerSecond    = uint64(time.Second)
)

// metricDefs is every metric berth exports; metricOrder fixes the order
// of ListMetricDescriptors.
var (
	metricDefs = map[string]metricDef{
		mCPUUsageSeconds:  {"Cumulative cpu time consumed in seconds.", counter, ""},
		mMemoryUsage:      {"Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, ""},
		mMemoryWorkingSet: {"Current working set in bytes: usage minus inactive file cache.", gauge, ""},
		mMemoryRSS:        {"Size of RSS (anonymous memory) in bytes.", gauge, ""},
		mMemoryLimit:      {"Memory limit for the container in bytes (0: none).", gauge, ""},
		mFsUsage:          {"Number of bytes consumed by the container's writable layer.", gauge, labelDevice},
		mProcesses:        {"Number of processes running inside the pod.", gauge, ""},
		mNetRxBytes:       {"Cumulative count of bytes received.", counter, labelInterface},
		mNetTxBytes:       {"Cumulative count of bytes transmitted.", counter, labelInterface},
		mNetRxErrors:      {"Cumulative count of errors encountered while receiving.", counter, labelInterface},
		mNetTxErrors:      {"Cumulative count of errors encountered while transmitting.", counter, labelInterface},
	}
	metricOrder = []string{
		mCPUUsageSeconds, mMemoryUsage, mMemoryWorkingSet, mMemoryRSS, mMemoryLimit,
		mFsUsage, mProcesses, mNetRxBytes, mNetTxBytes, mNetRxErrors, mNetTxErrors,
	}
)

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics
// returns.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: metricDescriptors()}, nil
}

func metricDescriptors() []*runtimeapi.MetricDescriptor {
	var out []*runtimeapi.MetricDescriptor
	for _, name := range metricOrder {
		d := metricDefs[name]
		keys := append([]string(nil), metricLabelKeys...)
		if d.extra != "" {
			keys = append(keys, d.extra)
		}
		out = append(out, &runtimeapi.MetricDescriptor{Name: name, Help: d.help, LabelKeys: keys})
	}
	return out
}

// ListPodSandboxMetrics returns every pod's metric values: the pod's own
// (CPU, memory, processes, network) and its containers'.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	items, err := s.podMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: items}, nil
}

// StreamPodSandboxMetrics sends the same list in batches.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxMetricsServer) error {
	items, err := s.podMetrics(stream.Context())
	if err != nil {
		return err
	}
	return sendBatches(items, func(b []*runtimeapi.PodSandboxMetrics) error {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: b})
	})
}

func (s *Server) podMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	sbs, err := s.matchingSandboxes(ctx, nil)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.PodSandboxMetrics{}
	for _, sb := range sbs {
		// No rates: metrics are cumulative, and a scrape must not move
		// the sample the stats RPCs compute usage_nano_cores from.
		items = append(items, toPodMetrics(s.containers.PodStats(ctx, sb, nil)))
	}
	return items, nil
}

// metricSet collects the metrics of one pod or container under its base
// label values.
type metricSet struct {
	labels []string
	out    []*runtimeapi.Metric
}

func (m *metricSet) add(name string, t time.Time, v uint64, extra ...string) {
	d := metricDefs[name]
	m.out = append(m.out, &runtimeapi.Metric{
		Name:        name,
		Timestamp:   t.UnixNano(),
		MetricType:  d.typ,
		LabelValues: append(append([]string(nil), m.labels...), extra...),
		Value:       u64(v),
	})
}

func (m *metricSet) cpuMemory(cpu runtime.CPUStats, mem runtime.MemoryStats) {
	if cpu.Valid {
		m.add(mCPUUsageSeconds, cpu.Time, cpu.UsageNanos/nanosPerSecond)
	}
	if mem.Valid {
		m.add(mMemoryUsage, mem.Time, mem.Usage)
		m.add(mMemoryWorkingSet, mem.Time, mem.WorkingSet)
		m.add(mMemoryRSS, mem.Time, mem.RSS)
		m.add(mMemoryLimit, mem.Time, mem.Limit)
	}
}

func toPodMetrics(ps runtime.PodStats) *runtimeapi.PodSandboxMetrics {
	sb := ps.Sandbox
	pod := metricSet{labels: []string{"", sb.ID, "", sb.Key, sb.Namespace, sb.Name}}
	pod.cpuMemory(ps.CPU, ps.Memory)
	if ps.ProcessesValid {
		pod.add(mProcesses, ps.ProcessesTime, ps.Processes)
	}
	if n := ps.Network; n != nil {
		for _, i := range n.Interfaces {
			pod.add(mNetRxBytes, n.Time, i.RxBytes, i.Name)
			pod.add(mNetTxBytes, n.Time, i.TxBytes, i.Name)
			pod.add(mNetRxErrors, n.Time, i.RxErrors, i.Name)
			pod.add(mNetTxErrors, n.Time, i.TxErrors, i.Name)
		}
	}
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID, Metrics: pod.out}
	for _, cs := range ps.Containers {
		c := cs.Container
		ctr := metricSet{labels: []string{c.Name, c.ID, c.Image, c.Key, sb.Namespace, sb.Name}}
		ctr.cpuMemory(cs.CPU, cs.Memory)
		if l := cs.WritableLayer; l != nil {
			ctr.add(mFsUsage, l.Time, l.Bytes, l.Mountpoint)
		}
		out.ContainerMetrics = append(out.ContainerMetrics, &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: ctr.out})
	}
	return out
}
