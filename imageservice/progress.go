package imageservice

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// Progress is one update of a pull. It carries what docker's JSON progress
// stream shows (an id, a status, current/total), so the Engine API can
// stream it as it is; the CRI has no field for it, so berthd logs it.
type Progress struct {
	// Layer is the layer's blob digest; empty for updates about the pull.
	Layer digest.Digest
	// Status is one of the Status* constants.
	Status string
	// Current and Total are bytes of the layer (or of the whole pull).
	Current, Total int64
}

// Pull progress statuses, worded as docker words them.
const (
	StatusResolving   = "Resolving"
	StatusWaiting     = "Waiting"
	StatusDownloading = "Downloading"
	StatusExists      = "Already exists"
	StatusComplete    = "Pull complete"
	StatusDone        = "Done"
)

// tracker sums a pull's byte counts and logs them at debug level while the
// pull runs.
type tracker struct {
	report func(Progress)
	done   atomic.Int64
	total  atomic.Int64
	stop   chan struct{}
	once   sync.Once
	m      *metrics
}

func newTracker(ctx context.Context, log *slog.Logger, ref string, m *metrics, report func(Progress)) *tracker {
	t := &tracker{report: report, stop: make(chan struct{}), m: m}
	if report == nil {
		t.report = func(Progress) {}
	}
	if log.Enabled(ctx, slog.LevelDebug) {
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					log.Debug("pull progress", "image", ref, "done", t.done.Load(), "total", t.total.Load())
				case <-t.stop:
					return
				}
			}
		}()
	}
	return t
}

func (t *tracker) close() { t.once.Do(func() { close(t.stop) }) }

// counter counts the bytes read through it into a layer's progress.
type counter struct {
	t       *tracker
	layer   digest.Digest
	size    int64
	current int64
	last    time.Time
}

func (c *counter) add(n int) {
	c.current += int64(n)
	c.t.done.Add(int64(n))
	c.t.m.bytes.Add(float64(n))
	if now := time.Now(); now.Sub(c.last) > 100*time.Millisecond || c.current == c.size {
		c.last = now
		c.t.report(Progress{Layer: c.layer, Status: StatusDownloading, Current: c.current, Total: c.size})
	}
}

// metrics are the pull figures exported to Prometheus.
type metrics struct {
	bytes    prometheus.Counter
	inflight prometheus.Gauge
	pulls    *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_image_pull_bytes_total", Help: "Compressed layer bytes downloaded by pulls."}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_image_pulls_in_progress", Help: "Pulls under way."}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_image_pulls_total", Help: "Finished pulls by result."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "berth_image_pull_duration_seconds", Help: "Time taken by successful pulls.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.inflight, m.pulls, m.duration)
	}
	return m
}
