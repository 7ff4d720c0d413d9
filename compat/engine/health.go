package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// Docker's health-check defaults (daemon/health.go) and limits.
const (
	healthDefaultInterval      = 30 * time.Second
	healthDefaultTimeout       = 30 * time.Second
	healthDefaultStartInterval = 5 * time.Second
	healthDefaultRetries       = 3
	// healthLogEntries is how many results State.Health.Log keeps.
	healthLogEntries = 5
	// healthMaxOutput caps a result's output, as docker does.
	healthMaxOutput = 4096
)

// healthMonitors runs one probe loop per running docker container that
// has a health check. The loops write State.Health into the container's
// record (store.Container.Health), which inspect, ps and the ps `health`
// filter read.
type healthMonitors struct {
	s     *Server
	mu    sync.Mutex
	loops map[string]context.CancelFunc
}

// healthChecks starts the health checks: at once for the running
// containers (adopted after a berthd restart), then for every start of a
// docker container, stopping them when it exits. It returns at once;
// the work goes on until ctx ends.
func (s *Server) healthChecks(ctx context.Context) {
	if s.events == nil || s.containers == nil {
		return
	}
	hm := &healthMonitors{s: s, loops: map[string]context.CancelFunc{}}
	sub := s.events.Subscribe()
	if cs, err := s.containers.Match(ctx, runtime.ContainerFilter{Origin: store.OriginDocker}); err == nil {
		for _, c := range cs {
			if runtime.StateOf(c) == runtime.Running && hasHealthcheck(c) {
				hm.start(ctx, c, c.Health == nil)
			}
		}
	} else {
		s.log.Error("health checks: listing containers", "error", err)
	}
	go func() {
		defer sub.Close()
		for {
			evs, err := sub.Next(ctx.Done())
			if err != nil {
				s.log.Error("health checks: the event stream broke; containers started from now on are not checked", "error", err)
				return
			}
			if evs == nil {
				hm.stopAll()
				return
			}
			for _, e := range evs {
				if e.Sandbox || e.Origin != string(store.OriginDocker) {
					continue
				}
				switch e.Kind {
				case events.Started:
					if c, err := s.containers.Get(ctx, e.ID); err == nil && hasHealthcheck(c) && runtime.StateOf(c) == runtime.Running {
						hm.start(ctx, c, true)
					}
				case events.Stopped, events.Deleted:
					hm.stop(e.ID)
				}
			}
		}
	}()
}

func hasHealthcheck(c store.Container) bool {
	h := c.Healthcheck
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// start (re)starts c's probe loop. reset puts the health back to
// "starting" with no failures, as docker does at each start (the log
// stays).
func (hm *healthMonitors) start(ctx context.Context, c store.Container, reset bool) {
	hm.stop(c.ID)
	if reset {
		var err error
		if c, err = hm.s.containers.Modify(ctx, c.ID, func(c *store.Container) {
			if c.Health == nil {
				c.Health = &store.Health{}
			}
			c.Health.Status = string(container.Starting)
			c.Health.FailingStreak = 0
		}); err != nil {
			return
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	hm.mu.Lock()
	hm.loops[c.ID] = cancel
	hm.mu.Unlock()
	go hm.s.probeLoop(lctx, c)
}

func (hm *healthMonitors) stop(id string) {
	hm.mu.Lock()
	if cancel, ok := hm.loops[id]; ok {
		cancel()
		delete(hm.loops, id)
	}
	hm.mu.Unlock()
}

func (hm *healthMonitors) stopAll() {
	hm.mu.Lock()
	for id, cancel := range hm.loops {
		cancel()
		delete(hm.loops, id)
	}
	hm.mu.Unlock()
}

func orDefault(d, dflt time.Duration) time.Duration {
	if d <= 0 {
		return dflt
	}
	return d
}

// probeLoop runs c's check every interval (every start interval while
// the container is still "starting" within its start period) until ctx
// ends, as docker's health monitor does. A paused container is not
// probed.
func (s *Server) probeLoop(ctx context.Context, c store.Container) {
	hc := *c.Healthcheck
	interval := orDefault(hc.Interval, healthDefaultInterval)
	startInterval := orDefault(hc.StartInterval, healthDefaultStartInterval)
	startPeriod := max(hc.StartPeriod, 0)
	started := c.StartedAt
	status := string(container.Starting)
	if c.Health != nil && c.Health.Status != "" {
		status = c.Health.Status
	}
	next := func() time.Duration {
		if time.Since(started) < startPeriod && status == string(container.Starting) {
			return startInterval
		}
		return interval
	}
	timer := time.NewTimer(next())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		cur, err := s.containers.Get(ctx, c.ID)
		if err != nil || runtime.StateOf(cur) != runtime.Running {
			return
		}
		if !cur.Paused {
			result := s.probe(ctx, cur, hc)
			if ctx.Err() != nil {
				return
			}
			status = s.recordHealth(ctx, cur, hc, result, startPeriod)
		}
		timer.Reset(next())
	}
}

// probe runs the check once in the container: CMD as given, CMD-SHELL
// through /bin/sh -c. A failure to run it counts as a failed check with
// the error as output (exit code -1), and so does a timeout.
func (s *Server) probe(ctx context.Context, c store.Container, hc store.Healthcheck) store.HealthResult {
	var argv []string
	switch hc.Test[0] {
	case "CMD":
		argv = hc.Test[1:]
	case "CMD-SHELL":
		argv = append([]string{"/bin/sh", "-c"}, hc.Test[1:]...)
	default:
		argv = hc.Test
	}
	timeout := orDefault(hc.Timeout, healthDefaultTimeout)
	res := store.HealthResult{Start: time.Now().UTC()}
	if len(argv) == 0 {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), -1, "no health check command"
		return res
	}
	out, err := s.containers.ExecSync(ctx, c.ID, argv, timeout)
	res.End = time.Now().UTC()
	output := string(out.Stdout) + string(out.Stderr)
	if len(output) > healthMaxOutput {
		output = output[:healthMaxOutput]
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		res.ExitCode = -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		if output != "" {
			res.Output += ": " + output
		}
	case err != nil:
		res.ExitCode, res.Output = -1, err.Error()
	default:
		res.ExitCode, res.Output = out.ExitCode, output
	}
	return res
}

// recordHealth adds result to the container's health as docker's
// handleProbeResult does: success makes it healthy; failures within the
// start period of a container not yet healthy do not count; retries
// failures in a row make it unhealthy. A change of status is a
// health_status event. It returns the status.
func (s *Server) recordHealth(ctx context.Context, c store.Container, hc store.Healthcheck, result store.HealthResult, startPeriod time.Duration) string {
	retries := hc.Retries
	if retries <= 0 {
		retries = healthDefaultRetries
	}
	var old, now string
	updated, err := s.containers.Modify(ctx, c.ID, func(c *store.Container) {
		if c.Health == nil {
			c.Health = &store.Health{Status: string(container.Starting)}
		}
		old = c.Health.Status
		applyHealthResult(c.Health, result, c.StartedAt, startPeriod, retries)
		now = c.Health.Status
	})
	if err != nil {
		return old
	}
	if now != old {
		s.emitContainer(updated, "health_status: "+now, nil)
	}
	return now
}

// applyHealthResult is docker's handleProbeResult on h.
func applyHealthResult(h *store.Health, result store.HealthResult, startedAt time.Time, startPeriod time.Duration, retries int) {
	h.Log = append(h.Log, result)
	if len(h.Log) > healthLogEntries {
		h.Log = h.Log[len(h.Log)-healthLogEntries:]
	}
	if result.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = string(container.Healthy)
		return
	}
	if h.Status == string(container.Starting) && result.Start.Sub(startedAt) < startPeriod {
		return // a failure in the start period does not count
	}
	h.FailingStreak++
	if h.FailingStreak >= retries {
		h.Status = string(container.Unhealthy)
	}
}
