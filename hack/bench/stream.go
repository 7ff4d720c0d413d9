package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/streaming/streamingtest"
)

// The streaming section's sample counts (the brief's).
const (
	execSyncRuns   = 50
	execStreamRuns = 30
	attachRuns     = 50
	attachOpens    = 20
	pfRuns         = 3
	pfRTTRuns      = 200
	pfChunk        = 32 << 10 // every writer's and reader's buffer in the transfers
	pfMsg          = 64       // the round trip's message
	sinkPort       = 8080     // in the pod: nc -e dd bs=1M of=/dev/null (reads to EOF, then closes)
	echoPort       = 8081     // in the pod: nc -e cat
)

// streamPod is the pod the streaming section works in.
type streamPod struct {
	id, ip         string
	sleep, cat, nc string // container ids
}

// streamBench is section "stream": ExecSync, streaming Exec, Attach and
// PortForward through one berthd, each beside the limit it is judged
// against, measured in the same run.
func streamBench(e *podEnv, pfBytes int64) {
	ctx := context.Background()
	b := e.startBerth("berthd-stream")
	p, err := b.streamPod(ctx)
	if err != nil {
		fail(fmt.Errorf("stream: %w", err))
	}
	runcRoot := filepath.Join(b.root, "state", "runtime", "runc")
	off := fileSize(b.logPath)
	load0 := loadAvg()

	// 1. ExecSync of `true` beside `runc exec` of `true` into the same
	// container, interleaved so that load hits both alike.
	var syncT, runcT []time.Duration
	runcExec := func() error {
		out, err := exec.Command("runc", "--root", runcRoot, "exec", p.sleep, "true").CombinedOutput()
		if err != nil {
			return fmt.Errorf("runc exec: %v: %s", err, out)
		}
		return nil
	}
	execSync := func() error {
		r, err := b.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: p.sleep, Cmd: []string{"true"}, Timeout: 10})
		if err != nil {
			return fmt.Errorf("ExecSync: %w", err)
		}
		if r.ExitCode != 0 {
			return fmt.Errorf("ExecSync true: exit code %d", r.ExitCode)
		}
		return nil
	}
	for i := -2; i < execSyncRuns; i++ { // 2 untimed
		t0 := time.Now()
		if err := execSync(); err != nil {
			fail(err)
		}
		t1 := time.Now()
		if err := runcExec(); err != nil {
			fail(err)
		}
		t2 := time.Now()
		if i >= 0 {
			syncT = append(syncT, t1.Sub(t0))
			runcT = append(runcT, t2.Sub(t1))
		}
	}

	// 2. Streaming Exec of `true`: Exec RPC, SPDY (and WebSocket)
	// connect, the command, its exit status.
	var execT, execRPC, execWS []time.Duration
	execOnce := func(ws bool) (rpc, total time.Duration, err error) {
		t0 := time.Now()
		r, err := b.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: p.sleep, Cmd: []string{"true"}, Stdout: true, Stderr: true})
		if err != nil {
			return 0, 0, fmt.Errorf("Exec: %w", err)
		}
		t1 := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		run := streamingtest.SPDY
		if ws {
			run = streamingtest.WebSocket
		}
		if err := run(sctx, r.Url, streamingtest.Options{Stdout: io.Discard, Stderr: io.Discard}); err != nil {
			return 0, 0, fmt.Errorf("exec session: %w", err)
		}
		return t1.Sub(t0), time.Since(t0), nil
	}
	for i := -1; i < execStreamRuns; i++ {
		rpc, tot, err := execOnce(false)
		if err != nil {
			fail(err)
		}
		_, ws, err := execOnce(true)
		if err != nil {
			fail(err)
		}
		if i >= 0 {
			execT, execRPC, execWS = append(execT, tot), append(execRPC, rpc), append(execWS, ws)
		}
	}

	// Where a streaming exec's time goes: `echo x`, from the start to its
	// output (the process ran) and from the output to the exit status;
	// the same for runc exec.
	var outS, endS, outR, endR []time.Duration
	for i := -1; i < execStreamRuns; i++ {
		t0 := time.Now()
		r, err := b.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: p.sleep, Cmd: []string{"echo", "x"}, Stdout: true, Stderr: true})
		if err != nil {
			fail(fmt.Errorf("Exec: %w", err))
		}
		var fw firstWrite
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = streamingtest.SPDY(sctx, r.Url, streamingtest.Options{Stdout: &fw, Stderr: io.Discard})
		cancel()
		t1 := time.Now()
		if err != nil || fw.String() != "x\n" {
			fail(fmt.Errorf("exec echo x: %v, output %q", err, fw.String()))
		}
		var rw firstWrite
		cmd := exec.Command("runc", "--root", runcRoot, "exec", p.sleep, "echo", "x")
		cmd.Stdout = &rw
		if err := cmd.Run(); err != nil || rw.String() != "x\n" {
			fail(fmt.Errorf("runc exec echo x: %v, output %q", err, rw.String()))
		}
		t2 := time.Now()
		if i >= 0 {
			outS, endS = append(outS, fw.at.Sub(t0)), append(endS, t1.Sub(fw.at))
			outR, endR = append(outR, rw.at.Sub(t1)), append(endR, t2.Sub(rw.at))
		}
	}

	// 3. Attach to `cat`: establishing (Attach RPC + SPDY + first echo),
	// then the echo of one line through an established attach.
	var openT, openRPC, echoT []time.Duration
	for i := -1; i < attachOpens; i++ {
		a, rpc, first, err := b.attach(ctx, p.cat)
		if err != nil {
			fail(err)
		}
		a.close()
		if i >= 0 {
			openT, openRPC = append(openT, first), append(openRPC, rpc)
		}
	}
	a, _, _, err := b.attach(ctx, p.cat)
	if err != nil {
		fail(err)
	}
	for i := -5; i < attachRuns; i++ {
		d, err := a.echo()
		if err != nil {
			fail(err)
		}
		if i >= 0 {
			echoT = append(echoT, d)
		}
	}
	a.close()

	// 4. Port-forward: one-way bulk transfer into the pod's sink, and
	// the round trip of small messages through its echo server; beside
	// the same over plain loopback TCP in this process, and the same
	// sink and echo server reached directly on the pod's IP.
	pfResp, err := b.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: p.id, Port: []int32{sinkPort, echoPort}})
	if err != nil {
		fail(fmt.Errorf("PortForward: %w", err))
	}
	pf, err := streamingtest.DialPortForward(ctx, pfResp.Url)
	if err != nil {
		fail(fmt.Errorf("port-forward connect: %w", err))
	}
	defer pf.Close()
	payload := make([]byte, pfChunk)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	loop := newLoopback()
	defer loop.close()
	var pfT, loopT, directT []time.Duration
	var berthdCPU, selfCPU time.Duration
	for i := 0; i < pfRuns; i++ {
		d, err := bulk(loop.dialSink, payload, pfBytes)
		if err != nil {
			fail(fmt.Errorf("loopback transfer: %w", err))
		}
		loopT = append(loopT, d)
		d, err = bulk(func() (io.ReadWriteCloser, error) {
			return net.Dial("tcp4", net.JoinHostPort(p.ip, strconv.Itoa(sinkPort)))
		}, payload, pfBytes)
		if err != nil {
			fail(fmt.Errorf("transfer to the pod's IP: %w", err))
		}
		directT = append(directT, d)
		c0, s0 := cpuTime(b.d.pid()), selfCPUTime()
		d, err = bulk(func() (io.ReadWriteCloser, error) { return pfStream(pf, sinkPort) }, payload, pfBytes)
		if err != nil {
			fail(fmt.Errorf("port-forward transfer: %w", err))
		}
		berthdCPU += cpuTime(b.d.pid()) - c0
		selfCPU += selfCPUTime() - s0
		pfT = append(pfT, d)
	}
	berthdCPU /= pfRuns
	selfCPU /= pfRuns

	var pfRTT, loopRTT, directRTT []time.Duration
	pfEcho, err := pfStream(pf, echoPort)
	if err != nil {
		fail(err)
	}
	loopEcho, err := loop.dialEcho()
	if err != nil {
		fail(err)
	}
	directEcho, err := net.Dial("tcp4", net.JoinHostPort(p.ip, strconv.Itoa(echoPort)))
	if err != nil {
		fail(err)
	}
	msg, back := payload[:pfMsg], make([]byte, pfMsg)
	for i := -10; i < pfRTTRuns; i++ {
		for _, c := range []struct {
			rw  io.ReadWriter
			out *[]time.Duration
		}{{loopEcho, &loopRTT}, {directEcho, &directRTT}, {pfEcho, &pfRTT}} {
			t0 := time.Now()
			if _, err := c.rw.Write(msg); err != nil {
				fail(fmt.Errorf("echo: %w", err))
			}
			if _, err := io.ReadFull(c.rw, back); err != nil {
				fail(fmt.Errorf("echo: %w", err))
			}
			if i >= 0 {
				*c.out = append(*c.out, time.Since(t0))
			}
			if !bytes.Equal(msg, back) {
				fail(fmt.Errorf("echo: got other bytes back"))
			}
		}
	}
	pfEcho.Close()
	loopEcho.Close()
	directEcho.Close()
	load1 := loadAvg()
	server := rpcDurations(b.logPath, off)
	b.stop()

	// The report.
	mibps := func(ds []time.Duration) float64 { return float64(pfBytes) / (1 << 20) / quantile(ds, 0.5).Seconds() }
	row := func(label string, ds []time.Duration) {
		fmt.Printf("  %-54s %10s %10s\n", label, ms(quantile(ds, 0.5)), ms(quantile(ds, 0.9)))
	}
	ratio := func(label string, a, l []time.Duration) {
		fmt.Printf("  %-54s %9.2fx %9.2fx\n", label, ratioOf(a, l, 0.5), ratioOf(a, l, 0.9))
	}
	fmt.Printf("streaming: one pod, busybox; containers `sleep`, `cat` (stdin) and nc servers (sink `dd bs=1M of=/dev/null` on %d, echo `cat` on %d)\n", sinkPort, echoPort)
	fmt.Printf("  load average %s at the start, %s at the end (2 cores; other work on the machine shows here)\n", load0, load1)
	fmt.Printf("  %-54s %10s %10s\n", "", "median", "p90")
	fmt.Printf("  exec of `true`, %d samples each, berth and limit interleaved, after 2 untimed:\n", execSyncRuns)
	row("limit: runc --root <state>/runtime/runc exec <id> true", runcT)
	row("berth: ExecSync", syncT)
	ratio("berth / limit", syncT, runcT)
	fmt.Printf("  streaming exec of `true` (Exec RPC + connect + run + exit status), %d samples after 1 untimed:\n", execStreamRuns)
	row("berth: Exec + SPDY", execT)
	row("  of which the Exec RPC (URL)", execRPC)
	row("berth: Exec + WebSocket", execWS)
	ratio("berth SPDY / limit (runc exec)", execT, runcT)
	fmt.Printf("  where a streaming exec's time goes: `echo x`, %d samples, start → output, output → exit status:\n", execStreamRuns)
	row("limit: runc exec, start → output", outR)
	row("limit: runc exec, output → runc exited", endR)
	row("berth: Exec + SPDY, start → output", outS)
	row("berth: Exec + SPDY, output → exit status", endS)
	fmt.Printf("  attach to `cat` (stdin, no tty):\n")
	row(fmt.Sprintf("establish: Attach RPC + SPDY + first echo (%d)", attachOpens), openT)
	row("  of which the Attach RPC (URL)", openRPC)
	row(fmt.Sprintf("echo of one line on an established attach (%d)", attachRuns), echoT)
	fmt.Printf("  port-forward, one connection in one session; %d MiB one way in %d KiB writes, then half close, until the sink closes (it read to EOF); median of %d:\n", pfBytes>>20, pfChunk>>10, pfRuns)
	fmt.Printf("  %-54s %10s %10s\n", "", "MiB/s", "time")
	pfRow := func(label string, ds []time.Duration) {
		fmt.Printf("  %-54s %10.0f %10s\n", label, mibps(ds), ms(quantile(ds, 0.5)))
	}
	pfRow("limit: loopback TCP in this process, 32 KiB buffers", loopT)
	pfRow("the pod's sink on its IP, no berth (TCP over the bridge)", directT)
	pfRow("berth: port-forward to the same sink", pfT)
	fmt.Printf("  %-54s %9.2fx   (berth's MiB/s / limit's)\n", "berth / limit", mibps(pfT)/mibps(loopT))
	fmt.Printf("  %-54s %9.2fx\n", "berth / the sink on the pod's IP", mibps(pfT)/mibps(directT))
	fmt.Printf("  CPU per berth transfer: berthd %s, this client (SPDY side) %s, for %s of wall time\n", ms(berthdCPU), ms(selfCPU), ms(quantile(pfT, 0.5)))
	fmt.Printf("  round trip of a %d-byte message, %d samples after 10 untimed, the three interleaved:\n", pfMsg, pfRTTRuns)
	fmt.Printf("  %-54s %10s %10s\n", "", "median", "p90")
	rttRow := func(label string, ds []time.Duration) {
		fmt.Printf("  %-54s %10s %10s\n", label, us(quantile(ds, 0.5)), us(quantile(ds, 0.9)))
	}
	rttRow("limit: loopback TCP echo in this process", loopRTT)
	rttRow("the pod's echo server on its IP, no berth", directRTT)
	rttRow("berth: port-forward to the same echo server", pfRTT)
	ratio("berth / limit", pfRTT, loopRTT)
	ratio("berth / the echo server on the pod's IP", pfRTT, directRTT)
	fmt.Printf("  where the time goes (berthd log, medians): %s\n", streamSteps(server))
	fmt.Println()
}

func ratioOf(a, b []time.Duration, q float64) float64 {
	return quantile(a, q).Seconds() / quantile(b, q).Seconds()
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func streamSteps(m map[string][]time.Duration) string {
	var parts []string
	for _, rpc := range []string{"ExecSync", "Exec", "Attach", "PortForward"} {
		if ds := m[rpc]; len(ds) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s (%d)", rpc, ms(quantile(ds, 0.5)), len(ds)))
		}
	}
	if len(parts) == 0 {
		return "no RPC durations in the log"
	}
	return strings.Join(parts, ", ")
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamPod runs the pod and its three containers and waits until the nc
// servers answer on the pod's IP.
func (b *berthPods) streamPod(ctx context.Context) (streamPod, error) {
	b.seq++
	cfg := b.sandboxConfig(b.seq)
	os.MkdirAll(cfg.LogDirectory, 0o755)
	var p streamPod
	rr, err := b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return p, fmt.Errorf("RunPodSandbox: %w", err)
	}
	p.id = rr.PodSandboxId
	st, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
	if err != nil {
		return p, fmt.Errorf("PodSandboxStatus: %w", err)
	}
	p.ip = st.GetStatus().GetNetwork().GetIp()
	if p.ip == "" {
		return p, fmt.Errorf("the pod has no IP")
	}
	run := func(name string, stdin bool, cmd ...string) (string, error) {
		cr, err := b.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: p.id, SandboxConfig: cfg,
			Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: name},
				Image:    &runtimeapi.ImageSpec{Image: b.image},
				Command:  cmd,
				Stdin:    stdin,
				LogPath:  name + ".log",
				Linux:    &runtimeapi.LinuxContainerConfig{},
			},
		})
		if err != nil {
			return "", fmt.Errorf("CreateContainer %s: %w", name, err)
		}
		if _, err := b.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			return "", fmt.Errorf("StartContainer %s: %w", name, err)
		}
		return cr.ContainerId, nil
	}
	if p.sleep, err = run("sleep", false, "sleep", "100000"); err != nil {
		return p, err
	}
	if p.cat, err = run("cat", true, "cat"); err != nil {
		return p, err
	}
	// busybox nc: -ll keeps listening, -e runs the program per connection
	// on the socket. The sink is dd with 1 MiB reads: `wc -c` (which would
	// answer a byte count) reads at ~200 MiB/s here, slower than berth's
	// port-forward, and busybox's dd prints records, not bytes, so the
	// transfer ends at the sink's EOF: dd read everything and exited.
	script := fmt.Sprintf("nc -ll -p %d -e cat & exec nc -ll -p %d -e dd bs=1M of=/dev/null", echoPort, sinkPort)
	if p.nc, err = run("nc", false, "sh", "-c", script); err != nil {
		return p, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, port := range []int{echoPort, sinkPort} {
		for {
			c, err := net.DialTimeout("tcp4", net.JoinHostPort(p.ip, strconv.Itoa(port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return p, fmt.Errorf("nc in the pod does not answer on %s:%d: %w", p.ip, port, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p, nil
}

// firstWrite keeps what is written to it and the time of the first write.
type firstWrite struct {
	mu  sync.Mutex
	at  time.Time
	buf bytes.Buffer
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.at.IsZero() {
		f.at = time.Now()
	}
	return f.buf.Write(p)
}

func (f *firstWrite) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

// attachSession is an attach to `cat`: lines written to it come back.
type attachSession struct {
	stdin  *io.PipeWriter
	lines  chan struct{}
	cancel context.CancelFunc
	done   chan error
}

// lineSignal signals each newline written to it.
type lineSignal struct{ ch chan struct{} }

func (l lineSignal) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			l.ch <- struct{}{}
		}
	}
	return len(p), nil
}

// attach opens an attach session to ctr and returns it with the Attach
// RPC's duration and the time until a first line came back.
func (b *berthPods) attach(ctx context.Context, ctr string) (*attachSession, time.Duration, time.Duration, error) {
	t0 := time.Now()
	r, err := b.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: ctr, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("Attach: %w", err)
	}
	rpc := time.Since(t0)
	pr, pw := io.Pipe()
	sctx, cancel := context.WithCancel(ctx)
	a := &attachSession{stdin: pw, lines: make(chan struct{}, 16), cancel: cancel, done: make(chan error, 1)}
	go func() {
		a.done <- streamingtest.SPDY(sctx, r.Url, streamingtest.Options{Stdin: pr, Stdout: lineSignal{a.lines}, Stderr: io.Discard})
	}()
	if _, err := a.echo(); err != nil {
		a.close()
		return nil, 0, 0, err
	}
	return a, rpc, time.Since(t0), nil
}

// echo sends a line and waits for it to come back.
func (a *attachSession) echo() (time.Duration, error) {
	t0 := time.Now()
	if _, err := a.stdin.Write([]byte("x\n")); err != nil {
		return 0, fmt.Errorf("attach stdin: %w", err)
	}
	select {
	case <-a.lines:
		return time.Since(t0), nil
	case err := <-a.done:
		return 0, fmt.Errorf("attach session ended: %v", err)
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("attach: no echo after 10 s")
	}
}

func (a *attachSession) close() {
	a.cancel()
	a.stdin.Close()
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
	}
}

// pfStream opens a forwarded connection; Close half-closes it (the
// pod's side reads EOF) and reading goes on to the end.
func pfStream(pf *streamingtest.PortForwarder, port int) (io.ReadWriteCloser, error) {
	s, err := pf.Open(port)
	if err != nil {
		return nil, fmt.Errorf("port-forward open %d: %w", port, err)
	}
	return halfCloser{s}, nil
}

type halfCloser struct{ s *streamingtest.Stream }

func (h halfCloser) Read(p []byte) (int, error)  { return h.s.Read(p) }
func (h halfCloser) Write(p []byte) (int, error) { return h.s.Write(p) }
func (h halfCloser) Close() error                { return h.s.CloseWrite() }

// bulk sends total bytes in writes of len(chunk) on a new connection,
// half-closes it and reads until EOF: the sink closes once it has read
// everything. If the sink answers a number, it is the byte count it read
// and must be total. The time runs from the dial to the EOF.
func bulk(dial func() (io.ReadWriteCloser, error), chunk []byte, total int64) (time.Duration, error) {
	t0 := time.Now()
	c, err := dial()
	if err != nil {
		return 0, err
	}
	for sent := int64(0); sent < total; {
		n := min(int64(len(chunk)), total-sent)
		if _, err := c.Write(chunk[:n]); err != nil {
			return 0, fmt.Errorf("after %d bytes: %w", sent, err)
		}
		sent += n
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		err = cw.CloseWrite()
	} else {
		err = c.Close()
	}
	if err != nil {
		return 0, err
	}
	ans, err := io.ReadAll(c)
	d := time.Since(t0)
	if hc, ok := c.(halfCloser); ok {
		hc.s.Close()
	} else {
		c.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("reading the count: %w", err)
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(string(ans)), 10, 64); err == nil && n != total {
		return 0, fmt.Errorf("the sink read %q bytes, not %d", strings.TrimSpace(string(ans)), total)
	}
	return d, nil
}

// loopback is the limit: a sink and an echo server on 127.0.0.1 in this
// process, with the same buffer size as the clients.
type loopback struct {
	sink, echo net.Listener
	wg         sync.WaitGroup
}

func newLoopback() *loopback {
	l := &loopback{}
	var err error
	if l.sink, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		fail(err)
	}
	if l.echo, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		fail(err)
	}
	serve := func(ln net.Listener, handle func(net.Conn)) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); handle(c) }()
			}
		}()
	}
	serve(l.sink, func(c net.Conn) {
		n, _ := io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{c}, make([]byte, pfChunk))
		fmt.Fprintf(c, "%d\n", n)
	})
	serve(l.echo, func(c net.Conn) { io.CopyBuffer(onlyWriter{c}, onlyReader{c}, make([]byte, pfChunk)) })
	return l
}

// onlyReader and onlyWriter hide WriterTo and ReaderFrom (splice, the
// io.Discard pool) so that io.CopyBuffer uses the given buffer.
type onlyReader struct{ r io.Reader }
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func (l *loopback) dialSink() (io.ReadWriteCloser, error) {
	return net.Dial("tcp4", l.sink.Addr().String())
}
func (l *loopback) dialEcho() (net.Conn, error) { return net.Dial("tcp4", l.echo.Addr().String()) }

func (l *loopback) close() {
	l.sink.Close()
	l.echo.Close()
	l.wg.Wait()
}
