package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/cgroupstats"
)

// statsFigures are ListContainerStats' latency with many containers and
// its reference: reading the same figures in this process, one container
// after the other, with no RPC and no records (berthd reads several
// containers at once, so it can beat this).
type statsFigures struct {
	n                 int
	list, pods, limit []time.Duration
}

// listStatsBench times ListContainerStats and ListPodSandboxStats on b's
// n running containers (30 samples after 2 untimed), and the limit.
func listStatsBench(ctx context.Context, b *berthPods, n int) statsFigures {
	f := statsFigures{n: n}
	resp, err := b.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(resp.Containers) != n {
		fail(fmt.Errorf("ListContainers: %d containers, want %d: %v", len(resp.GetContainers()), n, err))
	}
	for i := -2; i < 30; i++ {
		t0 := time.Now()
		st, err := b.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
		t1 := time.Now()
		if err != nil || len(st.Stats) != n {
			fail(fmt.Errorf("ListContainerStats: %d stats, want %d: %v", len(st.GetStats()), n, err))
		}
		if _, err := b.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{}); err != nil {
			fail(fmt.Errorf("ListPodSandboxStats: %w", err))
		}
		t2 := time.Now()
		for _, c := range resp.Containers {
			group := cgroupstats.Group(false, runtime.CgroupsPath(false, cgroupParent, c.Id))
			if _, err := cgroupstats.Read(group); err != nil {
				fail(fmt.Errorf("limit: reading %s: %w", group, err))
			}
			snapshot.Usage(filepath.Join(b.root, "root", "containers", c.Id, "upper"))
		}
		t3 := time.Now()
		if i >= 0 {
			f.list = append(f.list, t1.Sub(t0))
			f.pods = append(f.pods, t2.Sub(t1))
			f.limit = append(f.limit, t3.Sub(t2))
		}
	}
	return f
}

func (f statsFigures) print() {
	fmt.Printf("  %-50s %10s %10s\n", "", "median", "p90")
	fmt.Printf("  %-50s %10s %10s\n", fmt.Sprintf("reference: %d cgroups + layers, in-process, serial", f.n), ms(quantile(f.limit, 0.5)), ms(quantile(f.limit, 0.9)))
	fmt.Printf("  %-50s %10s %10s\n", "berth: ListContainerStats", ms(quantile(f.list, 0.5)), ms(quantile(f.list, 0.9)))
	fmt.Printf("  %-50s %10s %10s\n", "berth: ListPodSandboxStats (with their containers)", ms(quantile(f.pods, 0.5)), ms(quantile(f.pods, 0.9)))
	fmt.Printf("  %-50s %9.2fx %9.2fx\n\n", "ListContainerStats / reference", quantile(f.list, 0.5).Seconds()/quantile(f.limit, 0.5).Seconds(), quantile(f.list, 0.9).Seconds()/quantile(f.limit, 0.9).Seconds())
}
