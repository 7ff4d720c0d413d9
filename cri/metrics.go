package cri

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/store"
)

// The kubelet (PodAndContainerStatsFromCRI) serves /metrics/cadvisor from
// ListMetricDescriptors and ListPodSandboxMetrics: it makes one Prometheus
// descriptor per MetricDescriptor and one sample per Metric, with the
// label values in the order of the descriptor's label keys. berth exports
// the cAdvisor metrics the kubelet, HPA and dashboards read, under
// cAdvisor's names and labels. The values are read on request
// (sandbox.Manager.PodMetrics: the cgroups through cgroupstats.ReadDetailed,
// /proc/<pid>/fd, statfs of the writable layer, /proc/net/dev in the pod's
// netns), never polled. A figure the host cannot give (no blkio I/O
// accounted, a controller not mounted) is left out, never sent as 0.
//
// Label values: container is the container's CRI name ("" for the pod's
// own figures, as cAdvisor gives the pod cgroup), id the container (or
// sandbox) id, image the image as the request named it, name the CRI's
// unique name, namespace and pod the pod's. The CRI carries values as
// uint64, so the *_seconds metrics are whole seconds. Extra labels:
// interface (network), device (fs: the writable layers' directory for
// usage, size and inodes, the block device for reads and writes),
// failure_type and scope (memory failures), device, major, minor and
// operation (blkio).

// metricLabelKeys are the labels of every metric; some add more
// (metricDef.extra), whose values follow in that order.
var metricLabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

type metricDef struct {
	help string
	typ  runtimeapi.MetricType
	// extra are label keys after metricLabelKeys.
	extra []string
}

// Metric names, as cAdvisor names them.
const (
	mCPUUsageSeconds     = "container_cpu_usage_seconds_total"
	mCPUUserSeconds      = "container_cpu_user_seconds_total"
	mCPUSystemSeconds    = "container_cpu_system_seconds_total"
	mCPUPeriods          = "container_cpu_cfs_periods_total"
	mCPUThrottledPeriods = "container_cpu_cfs_throttled_periods_total"
	mCPUThrottledSeconds = "container_cpu_cfs_throttled_seconds_total"
	mMemoryUsage         = "container_memory_usage_bytes"
	mMemoryWorkingSet    = "container_memory_working_set_bytes"
	mMemoryRSS           = "container_memory_rss"
	mMemoryCache         = "container_memory_cache"
	mMemoryMappedFile    = "container_memory_mapped_file"
	mMemorySwap          = "container_memory_swap"
	mMemoryKernel        = "container_memory_kernel_usage"
	mMemoryMaxUsage      = "container_memory_max_usage_bytes"
	mMemoryFailcnt       = "container_memory_failcnt"
	mMemoryFailures      = "container_memory_failures_total"
	mOOMEvents           = "container_oom_events_total"
	mMemoryLimit         = "container_spec_memory_limit_bytes"
	mMemorySwapLimit     = "container_spec_memory_swap_limit_bytes"
	mCPUPeriod           = "container_spec_cpu_period"
	mCPUShares           = "container_spec_cpu_shares"
	mFsUsage             = "container_fs_usage_bytes"
	mFsLimit             = "container_fs_limit_bytes"
	mFsInodesTotal       = "container_fs_inodes_total"
	mFsInodesFree        = "container_fs_inodes_free"
	mFsReadsBytes        = "container_fs_reads_bytes_total"
	mFsReads             = "container_fs_reads_total"
	mFsWritesBytes       = "container_fs_writes_bytes_total"
	mFsWrites            = "container_fs_writes_total"
	mBlkioDeviceUsage    = "container_blkio_device_usage_total"
	mProcesses           = "container_processes"
	mThreads             = "container_threads"
	mThreadsMax          = "container_threads_max"
	mFileDescriptors     = "container_file_descriptors"
	mSockets             = "container_sockets"
	mNetRxBytes          = "container_network_receive_bytes_total"
	mNetTxBytes          = "container_network_transmit_bytes_total"
	mNetRxErrors         = "container_network_receive_errors_total"
	mNetTxErrors         = "container_network_transmit_errors_total"
	mNetRxPackets        = "container_network_receive_packets_total"
	mNetTxPackets        = "container_network_transmit_packets_total"
	mNetRxDropped        = "container_network_receive_packets_dropped_total"
	mNetTxDropped        = "container_network_transmit_packets_dropped_total"
	mStartTime           = "container_start_time_seconds"
	mLastSeen            = "container_last_seen"
	counter, gauge       = runtimeapi.MetricType_COUNTER, runtimeapi.MetricType_GAUGE
	nanosPerSecond       = uint64(time.Second)
)

var (
	byInterface = []string{"interface"}
	byDevice    = []string{"device"}
	byFailure   = []string{"failure_type", "scope"}
	byBlkio     = []string{"device", "major", "minor", "operation"}
)

// metricDefs is every metric berth exports; metricOrder fixes the order
// of ListMetricDescriptors.
var (
	metricDefs = map[string]metricDef{
		mCPUUsageSeconds:     {"Cumulative cpu time consumed in seconds.", counter, nil},
		mCPUUserSeconds:      {"Cumulative user cpu time consumed in seconds.", counter, nil},
		mCPUSystemSeconds:    {"Cumulative system cpu time consumed in seconds.", counter, nil},
		mCPUPeriods:          {"Number of elapsed enforcement period intervals.", counter, nil},
		mCPUThrottledPeriods: {"Number of throttled period intervals.", counter, nil},
		mCPUThrottledSeconds: {"Total time duration the container has been throttled, in seconds.", counter, nil},
		mMemoryUsage:         {"Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil},
		mMemoryWorkingSet:    {"Current working set in bytes: usage minus inactive file cache.", gauge, nil},
		mMemoryRSS:           {"Size of RSS (anonymous memory) in bytes.", gauge, nil},
		mMemoryCache:         {"Number of bytes of page cache memory.", gauge, nil},
		mMemoryMappedFile:    {"Size of memory mapped files in bytes.", gauge, nil},
		mMemorySwap:          {"Container swap usage in bytes.", gauge, nil},
		mMemoryKernel:        {"Size of kernel memory allocated in bytes.", gauge, nil},
		mMemoryMaxUsage:      {"Maximum memory usage recorded in bytes.", gauge, nil},
		mMemoryFailcnt:       {"Number of memory usage hits limits.", counter, nil},
		mMemoryFailures:      {"Cumulative count of memory allocation failures (page faults).", counter, byFailure},
		mOOMEvents:           {"Count of out of memory events observed for the container.", counter, nil},
		mMemoryLimit:         {"Memory limit for the container in bytes (0: none).", gauge, nil},
		mMemorySwapLimit:     {"Memory swap limit for the container in bytes (0: none; on cgroup v1 it counts memory and swap).", gauge, nil},
		mCPUPeriod:           {"CPU period of the container, in microseconds.", gauge, nil},
		mCPUShares:           {"CPU share of the container.", gauge, nil},
		mFsUsage:             {"Number of bytes consumed by the container's writable layer.", gauge, byDevice},
		mFsLimit:             {"Number of bytes that can be consumed by the container on this filesystem.", gauge, byDevice},
		mFsInodesTotal:       {"Number of Inodes.", gauge, byDevice},
		mFsInodesFree:        {"Number of available Inodes.", gauge, byDevice},
		mFsReadsBytes:        {"Cumulative count of bytes read.", counter, byDevice},
		mFsReads:             {"Cumulative count of reads completed.", counter, byDevice},
		mFsWritesBytes:       {"Cumulative count of bytes written.", counter, byDevice},
		mFsWrites:            {"Cumulative count of writes completed.", counter, byDevice},
		mBlkioDeviceUsage:    {"Blkio device bytes usage.", counter, byBlkio},
		mProcesses:           {"Number of processes running inside the container.", gauge, nil},
		mThreads:             {"Number of threads running inside the container.", gauge, nil},
		mThreadsMax:          {"Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, nil},
		mFileDescriptors:     {"Number of open file descriptors for the container.", gauge, nil},
		mSockets:             {"Number of open sockets for the container.", gauge, nil},
		mNetRxBytes:          {"Cumulative count of bytes received.", counter, byInterface},
		mNetTxBytes:          {"Cumulative count of bytes transmitted.", counter, byInterface},
		mNetRxErrors:         {"Cumulative count of errors encountered while receiving.", counter, byInterface},
		mNetTxErrors:         {"Cumulative count of errors encountered while transmitting.", counter, byInterface},
		mNetRxPackets:        {"Cumulative count of packets received.", counter, byInterface},
		mNetTxPackets:        {"Cumulative count of packets transmitted.", counter, byInterface},
		mNetRxDropped:        {"Cumulative count of packets dropped while receiving.", counter, byInterface},
		mNetTxDropped:        {"Cumulative count of packets dropped while transmitting.", counter, byInterface},
		mStartTime:           {"Start time of the container since unix epoch in seconds.", gauge, nil},
		mLastSeen:            {"Last time a container was seen by the exporter, since unix epoch in seconds.", gauge, nil},
	}
	metricOrder = []string{
		mCPUUsageSeconds, mCPUUserSeconds, mCPUSystemSeconds, mCPUPeriods, mCPUThrottledPeriods, mCPUThrottledSeconds,
		mMemoryUsage, mMemoryWorkingSet, mMemoryRSS, mMemoryCache, mMemoryMappedFile, mMemorySwap, mMemoryKernel,
		mMemoryMaxUsage, mMemoryFailcnt, mMemoryFailures, mOOMEvents,
		mMemoryLimit, mMemorySwapLimit, mCPUPeriod, mCPUShares,
		mFsUsage, mFsLimit, mFsInodesTotal, mFsInodesFree, mFsReadsBytes, mFsReads, mFsWritesBytes, mFsWrites, mBlkioDeviceUsage,
		mProcesses, mThreads, mThreadsMax, mFileDescriptors, mSockets,
		mNetRxBytes, mNetTxBytes, mNetRxErrors, mNetTxErrors, mNetRxPackets, mNetTxPackets, mNetRxDropped, mNetTxDropped,
		mStartTime, mLastSeen,
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
		keys := append(append([]string(nil), metricLabelKeys...), d.extra...)
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
	sbs, err := s.sandboxes.Match(ctx, sandbox.Filter{Origin: store.OriginCRI})
	if err != nil {
		return nil, err
	}
	pss, err := s.stats.PodMetrics(ctx, sbs)
	if err != nil {
		return nil, err
	}
	items := []*runtimeapi.PodSandboxMetrics{}
	for _, ps := range pss {
		items = append(items, toPodMetrics(ps))
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
	if cpu.Valid || mem.Valid {
		// The cgroup was read: the container was seen then.
		t := cpu.Time
		if mem.Time.After(t) {
			t = mem.Time
		}
		m.add(mLastSeen, t, uint64(t.Unix()))
	}
}

// detail adds the figures of a detailed cgroup read; mem gives the
// hierarchical page faults. Processes are the container's own figure
// (cgroup.procs); the pod's is its task count, which PodStats reads.
func (m *metricSet) detail(d *cgroupstats.Detail, mem cgroupstats.Memory, processes bool) {
	t := d.Time
	if c := d.CPU; c.HasUsage {
		m.add(mCPUUserSeconds, t, c.UserNanos/nanosPerSecond)
		m.add(mCPUSystemSeconds, t, c.SystemNanos/nanosPerSecond)
	}
	if c := d.CPU; c.HasThrottling {
		m.add(mCPUPeriods, t, c.Periods)
		m.add(mCPUThrottledPeriods, t, c.ThrottledPeriods)
		m.add(mCPUThrottledSeconds, t, c.ThrottledNanos/nanosPerSecond)
	}
	if c := d.CPU; c.HasSpec {
		m.add(mCPUPeriod, t, c.PeriodMicros)
		m.add(mCPUShares, t, c.Shares)
	}
	if md := d.Memory; md.Has {
		m.add(mMemoryCache, t, md.Cache)
		m.add(mMemoryMappedFile, t, md.MappedFile)
		m.add(mMemorySwap, t, md.Swap)
		m.add(mMemoryKernel, t, md.Kernel)
		m.add(mMemoryMaxUsage, t, md.MaxUsage)
		m.add(mMemoryFailcnt, t, md.Failcnt)
		m.add(mOOMEvents, t, md.OOMKills)
		m.add(mMemorySwapLimit, t, md.SwapLimit)
		// As cAdvisor: the cgroup's own faults, and with its children.
		m.add(mMemoryFailures, t, md.LocalPageFaults, "pgfault", "container")
		m.add(mMemoryFailures, t, md.LocalMajorPageFaults, "pgmajfault", "container")
		m.add(mMemoryFailures, t, mem.PageFaults, "pgfault", "hierarchy")
		m.add(mMemoryFailures, t, mem.MajorPageFaults, "pgmajfault", "hierarchy")
	}
	if tk := d.Tasks; tk.HasPids {
		m.add(mThreads, t, tk.Threads)
		m.add(mThreadsMax, t, tk.ThreadsMax)
	}
	if tk := d.Tasks; tk.HasProcs {
		if processes {
			m.add(mProcesses, t, tk.Processes)
		}
		m.add(mFileDescriptors, t, tk.FileDescriptors)
		m.add(mSockets, t, tk.Sockets)
	}
	for _, dev := range d.IO {
		if v, ok := dev.Bytes["Read"]; ok {
			m.add(mFsReadsBytes, t, v, dev.Device)
		}
		if v, ok := dev.Ops["Read"]; ok {
			m.add(mFsReads, t, v, dev.Device)
		}
		if v, ok := dev.Bytes["Write"]; ok {
			m.add(mFsWritesBytes, t, v, dev.Device)
		}
		if v, ok := dev.Ops["Write"]; ok {
			m.add(mFsWrites, t, v, dev.Device)
		}
		major, minor := strconv.FormatUint(dev.Major, 10), strconv.FormatUint(dev.Minor, 10)
		for _, op := range slices.Sorted(maps.Keys(dev.Bytes)) {
			m.add(mBlkioDeviceUsage, t, dev.Bytes[op], dev.Device, major, minor, op)
		}
	}
}

func (m *metricSet) network(n *sandbox.NetworkStats) {
	for _, i := range n.Interfaces {
		m.add(mNetRxBytes, n.Time, i.RxBytes, i.Name)
		m.add(mNetTxBytes, n.Time, i.TxBytes, i.Name)
		m.add(mNetRxErrors, n.Time, i.RxErrors, i.Name)
		m.add(mNetTxErrors, n.Time, i.TxErrors, i.Name)
		m.add(mNetRxPackets, n.Time, i.RxPackets, i.Name)
		m.add(mNetTxPackets, n.Time, i.TxPackets, i.Name)
		m.add(mNetRxDropped, n.Time, i.RxDropped, i.Name)
		m.add(mNetTxDropped, n.Time, i.TxDropped, i.Name)
	}
}

func (m *metricSet) layer(l *runtime.LayerUsage) {
	m.add(mFsUsage, l.Time, l.Bytes, l.Mountpoint)
	if l.HasFs {
		m.add(mFsLimit, l.Time, l.Capacity, l.Mountpoint)
		m.add(mFsInodesTotal, l.Time, l.InodesTotal, l.Mountpoint)
		m.add(mFsInodesFree, l.Time, l.InodesFree, l.Mountpoint)
	}
}

func toPodMetrics(ps sandbox.PodStats) *runtimeapi.PodSandboxMetrics {
	sb := ps.Sandbox
	pod := metricSet{labels: []string{"", sb.ID, "", sb.Key, sb.Namespace, sb.Name}}
	pod.cpuMemory(ps.CPU, ps.Memory)
	if ps.ProcessesValid {
		pod.add(mProcesses, ps.ProcessesTime, ps.Processes)
	}
	if ps.Detail != nil {
		pod.detail(ps.Detail, ps.Memory.Memory, false)
	}
	if n := ps.Network; n != nil {
		pod.network(n)
	}
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID, Metrics: pod.out}
	for _, cs := range ps.Containers {
		c := cs.Container
		ctr := metricSet{labels: []string{c.Name, c.ID, c.Image, c.Key, sb.Namespace, sb.Name}}
		ctr.cpuMemory(cs.CPU, cs.Memory)
		if cs.Detail != nil {
			ctr.detail(cs.Detail, cs.Memory.Memory, true)
		}
		if (cs.CPU.Valid || cs.Memory.Valid) && !c.StartedAt.IsZero() {
			ctr.add(mStartTime, cs.CPU.Time, uint64(c.StartedAt.Unix()))
		}
		if l := cs.WritableLayer; l != nil {
			ctr.layer(l)
		}
		out.ContainerMetrics = append(out.ContainerMetrics, &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: ctr.out})
	}
	return out
}
