package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criPods runs the pod-to-running sequence against any CRI endpoint
// (berthd or containerd): RunPodSandbox, CreateContainer, StartContainer,
// then ContainerStatus until RUNNING.
type criPods struct {
	rt     runtimeapi.RuntimeServiceClient
	image  string // the busybox image, already pulled
	logDir string
	seq    int
	// userns gives each pod a user namespace (65536 IDs from 2^21).
	userns bool
}

// pod is one running pod: its sandbox and its one container.
type pod struct {
	id, ctr string
	cfg     *runtimeapi.PodSandboxConfig
}

// podTimes is where one pod's time went, as the client saw it.
type podTimes struct{ run, create, start, wait, total time.Duration }

func (c *criPods) sandboxConfig(n int) *runtimeapi.PodSandboxConfig {
	name := fmt.Sprintf("bench-%d", n)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: fmt.Sprintf("%s-%d", name, time.Now().UnixNano())},
		Hostname:     name,
		LogDirectory: filepath.Join(c.logDir, name),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: cgroupParent},
	}
	if c.userns {
		m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1 << 21, Length: 65536}}
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m},
		}}
	}
	return cfg
}

// start runs one pod whose container sleeps, and returns when
// ContainerStatus says it runs.
func (c *criPods) start(ctx context.Context) (pod, podTimes, error) {
	c.seq++
	cfg := c.sandboxConfig(c.seq)
	os.MkdirAll(cfg.LogDirectory, 0o755)
	var p pod
	var t podTimes
	t0 := time.Now()
	rr, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return p, t, fmt.Errorf("RunPodSandbox: %w", err)
	}
	p.id, p.cfg = rr.PodSandboxId, cfg
	t1 := time.Now()
	if p.ctr, err = c.createSleeper(ctx, p, "sleep"); err != nil {
		return p, t, err
	}
	t2 := time.Now()
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.ctr}); err != nil {
		return p, t, fmt.Errorf("StartContainer: %w", err)
	}
	t3 := time.Now()
	for {
		st, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: p.ctr})
		if err != nil {
			return p, t, fmt.Errorf("ContainerStatus: %w", err)
		}
		if s := st.GetStatus().GetState(); s == runtimeapi.ContainerState_CONTAINER_RUNNING {
			break
		} else if s == runtimeapi.ContainerState_CONTAINER_EXITED {
			return p, t, fmt.Errorf("container exited: %s %s", st.Status.Reason, st.Status.Message)
		}
		if time.Since(t3) > 30*time.Second {
			return p, t, fmt.Errorf("container %s not running after 30 s", p.ctr)
		}
		time.Sleep(time.Millisecond)
	}
	t4 := time.Now()
	return p, podTimes{run: t1.Sub(t0), create: t2.Sub(t1), start: t3.Sub(t2), wait: t4.Sub(t3), total: t4.Sub(t0)}, nil
}

// createSleeper creates (does not start) a container named name that
// sleeps in pod p.
func (c *criPods) createSleeper(ctx context.Context, p pod, name string) (string, error) {
	cr, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.id, SandboxConfig: p.cfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: c.image},
			Command:  []string{"sleep", "100000"},
			LogPath:  name + ".log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainer: %w", err)
	}
	return cr.ContainerId, nil
}

// remove stops and removes a pod (StopPodSandbox kills its containers).
func (c *criPods) remove(ctx context.Context, id string) error {
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return nil
}

// removeAll removes every pod the endpoint knows: the bench's cleanup.
func (c *criPods) removeAll(ctx context.Context) {
	resp, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, sb := range resp.Items {
		if err := c.remove(ctx, sb.Id); err != nil {
			fmt.Fprintf(os.Stderr, "bench: cleanup: removing pod %s: %v\n", sb.Id, err)
		}
	}
}

// measure times n pods to running, each stopped and removed (untimed)
// before the next starts.
func (c *criPods) measure(ctx context.Context, n int) ([]podTimes, error) {
	var out []podTimes
	for i := 0; i < n; i++ {
		p, t, err := c.start(ctx)
		if err != nil {
			if p.id != "" {
				c.remove(ctx, p.id)
			}
			return nil, err
		}
		out = append(out, t)
		if err := c.remove(ctx, p.id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// waitCRI waits until the endpoint answers Version and reports its
// network ready.
func waitCRI(ctx context.Context, rt runtimeapi.RuntimeServiceClient, alive func() bool) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if !alive() {
			return "", fmt.Errorf("the daemon exited")
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := rt.Version(cctx, &runtimeapi.VersionRequest{})
		if err == nil {
			var st *runtimeapi.StatusResponse
			st, err = rt.Status(cctx, &runtimeapi.StatusRequest{})
			if err == nil {
				ready := true
				for _, c := range st.GetStatus().GetConditions() {
					if !c.Status {
						ready = false
						err = fmt.Errorf("%s: %s %s", c.Type, c.Reason, c.Message)
					}
				}
				if ready {
					cancel()
					return v.RuntimeName + " " + v.RuntimeVersion, nil
				}
			}
		}
		cancel()
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("not ready after 30 s: %v", last)
}

// summary of a series of pod times: median and p90 of the totals, medians
// of the steps.
func podSummary(ts []podTimes) (med, p90 time.Duration, steps string) {
	tot := pick(ts, func(t podTimes) time.Duration { return t.total })
	steps = fmt.Sprintf("RunPodSandbox %s, CreateContainer %s, StartContainer %s, →RUNNING %s",
		ms(quantile(pick(ts, func(t podTimes) time.Duration { return t.run }), 0.5)),
		ms(quantile(pick(ts, func(t podTimes) time.Duration { return t.create }), 0.5)),
		ms(quantile(pick(ts, func(t podTimes) time.Duration { return t.start }), 0.5)),
		ms(quantile(pick(ts, func(t podTimes) time.Duration { return t.wait }), 0.5)))
	return quantile(tot, 0.5), quantile(tot, 0.9), steps
}
