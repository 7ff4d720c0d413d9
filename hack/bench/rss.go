package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// shimProc is one running berth-shim monitor.
type shimProc struct {
	pid    int
	config string // its shim.json
	mem    memStatus
}

// shims lists the berth-shim monitors (not the pause processes, which run
// the same binary) running the binary at exe with a config below root
// (other daemons may run the same binary).
func shims(exe, root string) []shimProc {
	var out []shimProc
	for _, pid := range allPids() {
		if exePath(pid) != exe {
			continue
		}
		args := cmdline(pid)
		if len(args) != 2 || !strings.HasPrefix(args[1], root+"/") {
			continue
		}
		m, err := readMem(pid)
		if err != nil {
			continue
		}
		out = append(out, shimProc{pid: pid, config: args[1], mem: m})
	}
	return out
}

// rssBench is section "rss": the shims' memory with 10 running pods, then
// berthd's memory and CPU with n idle pods.
func rssBench(e *podEnv, n int) {
	ctx := context.Background()
	b := e.startBerth("berthd-rss")
	pid := b.d.pid()
	idle, _ := readMem(pid)
	shimExe := filepath.Join(e.bin, "berth-shim")

	var pods []pod
	var atTen []shimProc
	var perPod []int
	start := time.Now()
	for i := 0; i < n; i++ {
		p, _, err := b.start(ctx)
		if err != nil {
			fail(fmt.Errorf("berth: pod %d: %w", i+1, err))
		}
		pods = append(pods, p)
		if len(pods) == min(10, n) {
			atTen = shims(shimExe, b.root)
			perPod = shimsPerPod(atTen, pods)
		}
	}
	startAll := time.Since(start)
	time.Sleep(5 * time.Second)
	withPods, _ := readMem(pid)
	all := shims(shimExe, b.root)
	cpu0, shimCPU0 := cpuTime(pid), shimsCPU(all)
	const window = 10 * time.Second
	time.Sleep(window)
	cpu1, shimCPU1 := cpuTime(pid), shimsCPU(all)

	// A second container in every pod: 2n containers, idle, then listed.
	for _, p := range pods {
		id, err := b.createSleeper(ctx, p, "second")
		if err == nil {
			_, err = b.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		}
		if err != nil {
			fail(fmt.Errorf("berth: second container: %w", err))
		}
	}
	time.Sleep(5 * time.Second)
	cpu2 := cpuTime(pid)
	time.Sleep(window)
	cpu3 := cpuTime(pid)
	stats := listStatsBench(ctx, b, 2*len(pods))

	rm := time.Now()
	b.stop()
	removeAll := time.Since(rm)

	var rss, anon, file, pss []int64
	for _, s := range atTen {
		rss = append(rss, s.mem.vmRSS)
		anon = append(anon, s.mem.rssAnon)
		file = append(file, s.mem.rssFile)
		pss = append(pss, s.mem.pss)
	}
	fmt.Printf("berth-shim memory, %d running pods (infra + 1 sleeping busybox container each)\n", len(pods[:min(10, n)]))
	if len(atTen) == 0 {
		fmt.Printf("  no berth-shim processes found (%s)\n\n", shimExe)
	} else {
		fmt.Printf("  %d shim processes; per pod: %s\n", len(atTen), countsText(perPod))
		fmt.Printf("  %-50s %10s %10s\n", "", "median", "max")
		fmt.Printf("  %-50s %10s %10s   (goal < 3 MiB)\n", "VmRSS per shim", mib(quantile(rss, 0.5)), mib(quantile(rss, 1)))
		fmt.Printf("  %-50s %10s %10s\n", "RssAnon per shim", mib(quantile(anon, 0.5)), mib(quantile(anon, 1)))
		fmt.Printf("  %-50s %10s %10s\n", "RssFile per shim (binary text, shared)", mib(quantile(file, 0.5)), mib(quantile(file, 1)))
		fmt.Printf("  %-50s %10s %10s\n\n", "Pss per shim (shared pages divided)", mib(quantile(pss, 0.5)), mib(quantile(pss, 1)))
	}
	fmt.Printf("berthd with %d idle pods (each a sleeping busybox container), after a 5 s settle\n", len(pods))
	fmt.Printf("  %-50s %10s   (goal < 40 MiB)\n", "berthd VmRSS", mib(withPods.vmRSS))
	fmt.Printf("  %-50s %10s\n", "berthd RssAnon", mib(withPods.rssAnon))
	fmt.Printf("  %-50s %10s\n", "berthd VmRSS with the image pulled, no pods", mib(idle.vmRSS))
	fmt.Printf("  %-50s %10s   (%.2f%% of a core)\n", fmt.Sprintf("berthd CPU (utime+stime) over %s idle", window), ms(cpu1-cpu0), 100*(cpu1-cpu0).Seconds()/window.Seconds())
	fmt.Printf("  %-50s %10s\n", fmt.Sprintf("all %d shims' CPU over the same %s", len(all), window), ms(shimCPU1-shimCPU0))
	fmt.Printf("  (starting the %d pods took %s, removing them %s; CPU time is counted in 10 ms ticks)\n\n", len(pods), startAll.Round(time.Millisecond), removeAll.Round(time.Millisecond))
	fmt.Printf("the same %d pods with a second sleeping container each: %d containers\n", len(pods), 2*len(pods))
	fmt.Printf("  %-50s %10s   (%.2f%% of a core)\n", fmt.Sprintf("berthd CPU over %s idle", window), ms(cpu3-cpu2), 100*(cpu3-cpu2).Seconds()/window.Seconds())
	stats.print()
}

// shimsPerPod counts, for each pod, the shims whose config names its
// sandbox or its container.
func shimsPerPod(ss []shimProc, pods []pod) []int {
	configs := map[int][]byte{}
	for _, s := range ss {
		b, _ := os.ReadFile(s.config)
		configs[s.pid] = append(b, s.config...)
	}
	var out []int
	for _, p := range pods {
		n := 0
		for _, s := range ss {
			c := configs[s.pid]
			if bytes.Contains(c, []byte(p.id)) || bytes.Contains(c, []byte(p.ctr)) {
				n++
			}
		}
		out = append(out, n)
	}
	return out
}

func shimsCPU(ss []shimProc) time.Duration {
	var t time.Duration
	for _, s := range ss {
		t += cpuTime(s.pid)
	}
	return t
}

// countsText is "2 (all 10 pods)" or the distribution when pods differ.
func countsText(ns []int) string {
	hist := map[int]int{}
	for _, n := range ns {
		hist[n]++
	}
	if len(hist) == 1 {
		for k, v := range hist {
			return fmt.Sprintf("%d (all %d pods)", k, v)
		}
	}
	return fmt.Sprint(hist, " (shims per pod: pods)")
}
