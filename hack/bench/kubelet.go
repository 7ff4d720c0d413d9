package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/test/testutil"
)

// kubeletBench times a real kubelet's static pod from the moment its
// manifest is written to the moment the kubelet's /pods says its container
// runs: berth beside containerd where installed. Only one kubelet runs at
// a time (two would share /kubepods), so the runtimes take turns, a new
// kubelet each turn, in rounds; each kubelet's first pod is untimed.
func kubeletBench(e *podEnv, kubeletBin string, n int, withCtrd bool) {
	if _, err := os.Stat(kubeletBin); err != nil {
		fmt.Printf("kubelet: manifest to running: no kubelet at %s (bash hack/build-kubelet.sh builds it)\n\n", kubeletBin)
		return
	}
	b := e.startBerth("berthd-kubelet")
	defer b.stop()
	type target struct{ name, sock string }
	targets := []target{{"berth", filepath.Join(b.root, "state", "berth.sock")}}
	note := "left out (--containerd=false)"
	if withCtrd {
		var d *criDaemon
		var stop func()
		d, _, stop, note = startContainerd(e, b.conflist())
		if d != nil {
			defer stop()
			targets = append(targets, target{d.version, filepath.Join(e.base, "ctrd", "run", "containerd.sock")})
		}
	}
	defer testutil.RemoveCgroupTree("/kubepods")

	const rounds = 3
	per := max(1, (n+rounds-1)/rounds)
	times := map[string][]time.Duration{}
	for r := range rounds {
		for _, tg := range targets {
			dir, err := os.MkdirTemp(e.base, "kubelet-")
			if err != nil {
				fail(err)
			}
			logf, err := os.Create(filepath.Join(dir, "kubelet.log"))
			if err != nil {
				fail(err)
			}
			k, err := testutil.StartKubelet(testutil.KubeletOptions{Binary: kubeletBin, Dir: dir, Endpoint: tg.sock, Output: logf})
			if err != nil {
				fail(fmt.Errorf("kubelet on %s (log %s): %w", tg.name, logf.Name(), err))
			}
			for i := range per + 1 {
				d, err := kubeletPod(k, fmt.Sprintf("bench-%d-%d", r, i), e.busybox)
				if err != nil {
					k.Stop()
					fail(fmt.Errorf("kubelet on %s (log %s): %w", tg.name, logf.Name(), err))
				}
				if i > 0 {
					times[tg.name] = append(times[tg.name], d)
				}
			}
			k.Stop()
			logf.Close()
		}
	}

	fmt.Printf("kubelet: manifest to running (a static pod's manifest written → the kubelet's /pods says its container runs)\n")
	fmt.Printf("  a real kubelet (%s), busybox `sleep`, image present, no probes; %d pods one at a time in %d rounds,\n", filepath.Base(kubeletBin), per*rounds, rounds)
	fmt.Printf("  the runtimes alternating; each pod's manifest removed and the pod gone from /runningpods/ untimed.\n")
	fmt.Printf("  %-50s %10s %10s\n", "", "median", "p90")
	for _, tg := range targets {
		ts := times[tg.name]
		fmt.Printf("  %-50s %10s %10s\n", tg.name, ms(quantile(ts, 0.5)), ms(quantile(ts, 0.9)))
	}
	if len(targets) > 1 {
		bt, ct := times[targets[0].name], times[targets[1].name]
		fmt.Printf("  %-50s %9.2fx %9.2fx\n", "berth / containerd", quantile(bt, 0.5).Seconds()/quantile(ct, 0.5).Seconds(),
			quantile(bt, 0.9).Seconds()/quantile(ct, 0.9).Seconds())
	} else {
		fmt.Printf("  containerd: %s\n", note)
	}
	fmt.Println()
}

// kubeletPod writes a static pod's manifest, returns how long until the
// kubelet reports its container running, then removes the pod and waits
// until the runtime no longer has it.
func kubeletPod(k *testutil.Kubelet, name, image string) (time.Duration, error) {
	manifest := testutil.StaticPod(name, "Always", fmt.Sprintf(`  containers:
  - name: main
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
`, image))
	start := time.Now()
	if err := k.Drop(name, manifest); err != nil {
		return 0, err
	}
	if err := pollUntil(2*time.Minute, func() (bool, error) {
		p, ok := k.Pod(name)
		return ok && p.Running("main"), k.Exited()
	}); err != nil {
		return 0, fmt.Errorf("pod %s did not run: %w", name, err)
	}
	took := time.Since(start)
	if err := k.Remove(name); err != nil {
		return 0, err
	}
	err := pollUntil(2*time.Minute, func() (bool, error) {
		pods, err := k.RunningPods()
		if err != nil {
			return false, k.Exited()
		}
		for _, p := range pods {
			if p.Metadata.Name == name+"-"+k.NodeName {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("pod %s was not torn down: %w", name, err)
	}
	return took, nil
}

// pollUntil calls cond every 10 ms until it returns true or an error, or
// the timeout passes.
func pollUntil(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
