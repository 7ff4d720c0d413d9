package engine

import (
	"context"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// Docker's restart back-off (daemon/restartmanager): the first restart
// waits 100 ms, each further one twice as long, up to a minute; a
// container that ran for 10 s starts again from 100 ms.
const (
	restartBackoffStart = 100 * time.Millisecond
	restartBackoffMax   = time.Minute
	restartBackoffReset = 10 * time.Second
)

// restarter carries out the docker containers' restart policies: it
// remembers each container's back-off and the restart it has scheduled
// (a newer exit, or a user's start or removal, supersedes it).
type restarter struct {
	s       *Server
	mu      sync.Mutex
	backoff map[string]time.Duration
	pending map[string]uint64 // id → generation of the scheduled restart
	gen     uint64
}

// restartPolicies starts what berthd does for restart policies: at once,
// the containers that should run again after berthd (re)starts; then,
// for every exit of a docker container, a restart after the back-off
// when its policy says so. It returns at once; the work goes on until ctx
// ends.
func (s *Server) restartPolicies(ctx context.Context) {
	if s.events == nil || s.containers == nil {
		return
	}
	rs := &restarter{s: s, backoff: map[string]time.Duration{}, pending: map[string]uint64{}}
	s.restarts = rs
	sub := s.events.Subscribe()
	if cs, err := s.containers.Match(ctx, runtime.ContainerFilter{Origin: store.OriginDocker}); err == nil {
		for _, c := range cs {
			if runtime.StateOf(c) == runtime.Exited && restartAtDaemonStart(c) {
				go rs.restart(ctx, c.ID, 0, false)
			}
		}
	} else {
		s.log.Error("restart policies: listing containers", "error", err)
	}
	go func() {
		defer sub.Close()
		for {
			evs, err := sub.Next(ctx.Done())
			if err != nil {
				s.log.Error("restart policies: the event stream broke; exited containers are not restarted until berthd restarts", "error", err)
				return
			}
			if evs == nil {
				return
			}
			for _, e := range evs {
				if e.Sandbox || e.Origin != string(store.OriginDocker) {
					continue
				}
				switch e.Kind {
				case events.Stopped:
					rs.exited(ctx, e.ID)
				case events.Deleted:
					rs.forget(e.ID)
				}
			}
		}
	}()
}

// restartAtDaemonStart is docker's rule for a container found exited when
// the daemon starts: "always" runs again even if a user stopped it,
// "unless-stopped" unless a user did, "on-failure" if it failed and has
// retries left. A --rm container is removed instead.
func restartAtDaemonStart(c store.Container) bool {
	if c.AutoRemove {
		return false
	}
	p := c.RestartPolicy
	switch p.Name {
	case "always":
		return true
	case "unless-stopped":
		return !c.StoppedByUser
	case "on-failure":
		return c.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartAfterExit is docker's rule while the daemon runs: nothing a
// user stopped (stop, kill) restarts; "always" and "unless-stopped"
// restart whatever the exit code, "on-failure" a failure while it has
// retries left.
func restartAfterExit(c store.Container) bool {
	if c.AutoRemove || c.StoppedByUser {
		return false
	}
	p := c.RestartPolicy
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return c.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// nextBackoff is the wait before the next restart, given the last one
// (0: none yet) and how long the container ran.
func nextBackoff(last, ran time.Duration) time.Duration {
	if ran >= restartBackoffReset {
		last = 0
	}
	switch {
	case last == 0:
		return restartBackoffStart
	case last < restartBackoffMax:
		return min(last*2, restartBackoffMax)
	}
	return restartBackoffMax
}

// exited schedules the restart of container id, which exited, if its
// policy says so, counting it in RestartCount at once (as docker does,
// so inspect shows the count during the back-off).
func (rs *restarter) exited(ctx context.Context, id string) {
	s := rs.s
	c, err := s.containers.Get(ctx, id)
	if err != nil || runtime.StateOf(c) != runtime.Exited {
		return
	}
	if !restartAfterExit(c) {
		rs.forget(id)
		return
	}
	rs.mu.Lock()
	delay := nextBackoff(rs.backoff[id], c.FinishedAt.Sub(c.StartedAt))
	rs.backoff[id] = delay
	rs.gen++
	gen := rs.gen
	rs.pending[id] = gen
	rs.mu.Unlock()
	if _, err := s.containers.Modify(ctx, id, func(c *store.Container) { c.RestartCount++ }); err != nil {
		s.log.Warn("restart policy: counting a restart", "container", id[:12], "error", err)
		return
	}
	time.AfterFunc(delay, func() { rs.restart(ctx, id, gen, true) })
}

// restart starts container id again, unless the scheduled restart gen
// was superseded, or meanwhile the container was started, removed or
// stopped by a user (the policy was decided, and the restart counted,
// at the exit). Not scheduled: a restart at daemon start.
func (rs *restarter) restart(ctx context.Context, id string, gen uint64, scheduled bool) {
	if ctx.Err() != nil {
		return
	}
	if scheduled {
		rs.mu.Lock()
		current := rs.pending[id] == gen
		if current {
			delete(rs.pending, id)
		}
		rs.mu.Unlock()
		if !current {
			return
		}
	}
	s := rs.s
	c, err := s.containers.Get(ctx, id)
	if err != nil || runtime.StateOf(c) != runtime.Exited {
		return
	}
	if scheduled && c.StoppedByUser {
		return
	}
	if err := s.startContainer(ctx, c, false); err != nil {
		// Docker gives up too: the container stays exited.
		s.log.Warn("restart policy: starting the container again failed", "container", id[:12], "name", c.Key, "error", err)
		return
	}
	s.log.Debug("restart policy: container started again", "container", id[:12], "name", c.Key, "policy", c.RestartPolicy.Name, "restartCount", c.RestartCount)
}

// cancelRestart drops the restart a policy scheduled for container id
// (exited, waiting out its back-off: docker's "restarting"), and reports
// whether there was one. `docker stop`/`kill` of such a container call it,
// as docker's cancel their restart manager.
func (s *Server) cancelRestart(id string) bool {
	rs := s.restarts
	if rs == nil {
		return false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, pending := rs.pending[id]
	delete(rs.pending, id)
	return pending
}

// restarting reports whether container id waits out a restart back-off
// (docker's State.Restarting and status "restarting").
func (s *Server) restarting(id string) bool {
	rs := s.restarts
	if rs == nil {
		return false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, pending := rs.pending[id]
	return pending
}

// forget drops what is remembered of a container that will not be
// restarted (removed, or its policy says no).
func (rs *restarter) forget(id string) {
	rs.mu.Lock()
	delete(rs.backoff, id)
	delete(rs.pending, id)
	rs.mu.Unlock()
}
