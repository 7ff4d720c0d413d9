package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/logs"
	"github.com/berth-runtime/berth/runtime/ocirt"
	"github.com/berth-runtime/berth/test/testutil"
)

const runcPath = "/usr/sbin/runc"

var shimBin string // built by TestMain

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_SHIM_TEST_HELPER") == "1" {
		helperMain()
		return
	}
	dir, err := os.MkdirTemp("", "berth-shim-bin-")
	if err != nil {
		panic(err)
	}
	shimBin = filepath.Join(dir, "berth-shim")
	cmd := exec.Command("go", "build", "-o", shimBin, "github.com/berth-runtime/berth/cmd/berth-shim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building berth-shim: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helperMain starts a shim from a child process that the test then kills.
func helperMain() {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv("BERTH_SHIM_TEST_CONFIG")), &cfg); err != nil {
		panic(err)
	}
	s, err := Start(context.Background(), os.Getenv("BERTH_SHIM_TEST_BIN"), cfg)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %d\n", s.ShimPid, s.Pid)
	select {}
}

type testContainer struct {
	waitRes chan waitResult // a Wait connected right after shim.Start
	cfg     Config
	rt      *ocirt.Runtime
	dir     string
}

// newContainer writes a bundle running args with busybox and returns a
// shim config for it. Everything is removed at cleanup.
func newContainer(t *testing.T, args ...string) *testContainer {
	t.Helper()
	dir, err := os.MkdirTemp("", "bst-")
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("berth-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	bundle := filepath.Join(dir, "b")
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(testutil.BusyboxPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh", "echo", "sleep", "head", "tr", "yes", "cat", "seq"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", l))
	}
	specDir := t.TempDir()
	cmd := exec.Command(runcPath, "spec")
	cmd.Dir = specDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	raw, _ := os.ReadFile(filepath.Join(specDir, "config.json"))
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["args"] = args
	proc["terminal"] = false
	proc["rlimits"] = []any{map[string]any{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}}
	spec["root"] = map[string]any{"path": "rootfs", "readonly": false}
	linux := spec["linux"].(map[string]any)
	linux["cgroupsPath"] = "/" + id
	b, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tc := &testContainer{
		dir: dir,
		rt:  &ocirt.Runtime{Binary: runcPath, Root: filepath.Join(dir, "runc")},
		cfg: Config{
			ID: id, Bundle: bundle, Runtime: runcPath, RuntimeRoot: filepath.Join(dir, "runc"),
			LogPath: filepath.Join(dir, "c.log"), ExitFile: filepath.Join(dir, "exit.json"),
			Socket: filepath.Join(dir, "s.sock"), PidFile: filepath.Join(dir, "init.pid"),
		},
	}
	t.Cleanup(func() {
		if err := tc.rt.Delete(context.Background(), id, true); err != nil {
			t.Errorf("runc delete: %v", err)
		}
		os.RemoveAll(dir)
	})
	return tc
}

func (tc *testContainer) setTerminal() {
	p := filepath.Join(tc.cfg.Bundle, "config.json")
	b, _ := os.ReadFile(p)
	var spec map[string]any
	json.Unmarshal(b, &spec)
	spec["process"].(map[string]any)["terminal"] = true
	b, _ = json.Marshal(spec)
	os.WriteFile(p, b, 0o644)
	tc.cfg.Terminal = true
}

func (tc *testContainer) start(t *testing.T) Started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, shimBin, tc.cfg)
	if err != nil {
		t.Fatalf("shim.Start: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(s.ShimPid, syscall.SIGKILL) })
	tc.waitRes = make(chan waitResult, 1)
	conns := shimSockets(t, s.ShimPid)
	go func() {
		// Like berthd: one wait connection per container, opened at once.
		wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		st, err := Wait(wctx, tc.cfg.Socket)
		tc.waitRes <- waitResult{st, err}
	}()
	// A connection the shim has accepted is answered even if the
	// container exits at once; one still in the listen queue is not.
	waitAccepted(t, s.ShimPid, conns)
	if err := tc.rt.Start(ctx, tc.cfg.ID); err != nil {
		t.Fatalf("runc start: %v", err)
	}
	return s
}

// shimSockets counts the sockets the shim holds open: its listener and
// the control connections it has accepted.
func shimSockets(t *testing.T, shimPid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", shimPid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the shim's fds: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// waitAccepted waits until the shim holds more than n sockets, that is,
// until it has accepted the control connection a client just opened.
func waitAccepted(t *testing.T, shimPid, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for shimSockets(t, shimPid) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("the shim did not accept a control connection within 10s (%d sockets)", n)
		}
		time.Sleep(time.Millisecond)
	}
}

type waitResult struct {
	st  ExitStatus
	err error
}

func (tc *testContainer) wait(t *testing.T) ExitStatus {
	t.Helper()
	var st ExitStatus
	if tc.waitRes != nil {
		r := <-tc.waitRes
		if r.err != nil {
			t.Fatalf("Wait: %v", r.err)
		}
		st = r.st
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var err error
		if st, err = Wait(ctx, tc.cfg.Socket); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	fst, ok, err := ReadExit(tc.cfg.ExitFile)
	if err != nil || !ok {
		t.Fatalf("ReadExit = %v, %v", ok, err)
	}
	if fst.ExitCode != st.ExitCode || fst.Signal != st.Signal {
		t.Errorf("exit file %+v differs from wait %+v", fst, st)
	}
	return st
}

// records returns the log's records as "stream tag content".
func records(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		e, err := logs.Parse(l)
		if err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		tag := "F"
		if e.Partial {
			tag = "P"
		}
		out = append(out, e.Stream+" "+tag+" "+string(e.Content))
	}
	return out
}

func TestOutputAndExitCodes(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"exit 0", []string{"sh", "-c", "echo hello; echo oops >&2; echo '  spaced  '"}, 0,
			[]string{"stdout F hello", "stderr F oops", "stdout F   spaced  "}},
		{"exit 3", []string{"sh", "-c", "printf 'no newline'; exit 3"}, 3, []string{"stdout F no newline"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, tc.args...)
			c.start(t)
			st := c.wait(t)
			if st.ExitCode != tc.code || st.Signal != 0 {
				t.Errorf("exit = %+v, want code %d", st, tc.code)
			}
			got := records(t, c.cfg.LogPath)
			// stdout and stderr are separate pipes: order between them is not
			// guaranteed, order within each is.
			if strings.Join(sortedByStream(got), "\n") != strings.Join(sortedByStream(tc.want), "\n") {
				t.Errorf("log records:\n%q\nwant\n%q", got, tc.want)
			}
			if _, err := os.Stat(c.cfg.Socket); !os.IsNotExist(err) {
				t.Errorf("socket left behind: %v", err)
			}
		})
	}
}

func sortedByStream(rs []string) []string {
	var o, e []string
	for _, r := range rs {
		if strings.HasPrefix(r, "stdout") {
			o = append(o, r)
		} else {
			e = append(e, r)
		}
	}
	return append(o, e...)
}

func TestLongLineSplit(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo short")
	c.cfg.MaxLineSize = 16384
	c.start(t)
	if st := c.wait(t); st.ExitCode != 0 {
		t.Fatalf("exit %+v", st)
	}
	got := records(t, c.cfg.LogPath)
	want := []string{
		"stdout P " + strings.Repeat("a", 16384),
		"stdout P " + strings.Repeat("a", 16384),
		"stdout F " + strings.Repeat("a", 40000-2*16384),
		"stdout F short",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: got %.40q (len %d), want %.40q (len %d)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
}

func TestKilledBySignal(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sleep", "1000")
	c.start(t)
	if err := c.rt.Kill(context.Background(), c.cfg.ID, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	st := c.wait(t)
	if st.ExitCode != 137 || st.Signal != 9 {
		t.Errorf("exit = %+v, want 137/9", st)
	}
	s, err := c.rt.State(context.Background(), c.cfg.ID)
	if err != nil || s.Status != ocirt.StatusStopped {
		t.Errorf("state = %+v, %v; want stopped", s, err)
	}
}

func TestCreateFailureIsReported(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "/no/such/binary")
	_, err := Start(context.Background(), shimBin, c.cfg)
	if err == nil {
		t.Fatal("Start succeeded")
	}
	t.Logf("Start error: %v", err)
	if !strings.Contains(err.Error(), "/no/such/binary") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("error %q does not carry runc's message", err)
	}
	if _, err := c.rt.State(context.Background(), c.cfg.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State after failed create: %v", err)
	}
}

func TestStateNotFound(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := &ocirt.Runtime{Binary: runcPath, Root: t.TempDir()}
	_, err := rt.State(context.Background(), "berth-test-nonexistent")
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State = %v, want ErrNotFound", err)
	}
	if err := rt.Delete(context.Background(), "berth-test-nonexistent", true); err != nil {
		t.Errorf("Delete of missing container: %v", err)
	}
}

func TestShimSurvivesParentDeath(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sh", "-c", "sleep 2; echo done")
	cfgJSON, _ := json.Marshal(c.cfg)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "BERTH_SHIM_TEST_HELPER=1", "BERTH_SHIM_TEST_CONFIG="+string(cfgJSON), "BERTH_SHIM_TEST_BIN="+shimBin)
	out, _ := helper.StdoutPipe()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var shimPid, pid int
	if _, err := fmt.Sscanf(line, "%d %d", &shimPid, &pid); err != nil {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { syscall.Kill(shimPid, syscall.SIGKILL) })
	helper.Process.Kill()
	helper.Wait()
	if ppid := parentOf(t, shimPid); ppid == helper.Process.Pid {
		t.Errorf("shim %d is still the helper's child", shimPid)
	}
	if err := c.rt.Start(context.Background(), c.cfg.ID); err != nil {
		t.Fatal(err)
	}
	if st := c.wait(t); st.ExitCode != 0 {
		t.Errorf("exit %+v", st)
	}
	if got := records(t, c.cfg.LogPath); len(got) != 1 || got[0] != "stdout F done" {
		t.Errorf("log = %q", got)
	}
}

func parentOf(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("shim %d gone: %v", pid, err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	p, _ := strconv.Atoi(f[1])
	return p
}

func TestContinuousOutputNeverBlocks(t *testing.T) {
	testutil.RequiresRoot(t)
	// ~4 MB through a 64 KiB pipe: it finishes only if the shim keeps reading
	// while nobody is connected to its socket.
	c := newContainer(t, "sh", "-c", "yes 'a log line of some length' | head -n 150000; echo end >&2")
	c.start(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, ok, _ := ReadExit(c.cfg.ExitFile); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container did not finish: blocked on output?")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := records(t, c.cfg.LogPath)
	if len(got) != 150001 {
		t.Errorf("got %d records, want 150001", len(got))
	}
}

func TestReopenLog(t *testing.T) {
	testutil.RequiresRoot(t)
	const n = 20000
	c := newContainer(t, "sh", "-c", fmt.Sprintf("seq 1 %d", n))
	c.start(t)
	var files []string
	for i := 0; ; i++ {
		if _, ok, _ := ReadExit(c.cfg.ExitFile); ok || i > 200 {
			break
		}
		old := fmt.Sprintf("%s.%d", c.cfg.LogPath, i)
		if err := os.Rename(c.cfg.LogPath, old); err != nil {
			t.Fatal(err)
		}
		files = append(files, old)
		err := ReopenLog(context.Background(), c.cfg.Socket)
		if err != nil && !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("ReopenLog: %v", err)
		}
		if err != nil {
			break // shim already gone
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.wait(t)
	files = append(files, c.cfg.LogPath)
	seen := map[string]int{}
	nonEmpty := 0
	for _, f := range files {
		if _, err := os.Stat(f); os.IsNotExist(err) {
			continue
		}
		rs := records(t, f)
		if len(rs) > 0 {
			nonEmpty++
		}
		for _, r := range rs {
			seen[r]++
		}
	}
	for i := 1; i <= n; i++ {
		if k := seen["stdout F "+strconv.Itoa(i)]; k != 1 {
			t.Fatalf("line %d seen %d times", i, k)
		}
	}
	t.Logf("%d rotations, %d non-empty files", len(files)-1, nonEmpty)
}

func TestShimKilledLeavesContainer(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sleep", "1000")
	s := c.start(t)
	conns := shimSockets(t, s.ShimPid)
	waitErr := make(chan error, 1)
	go func() {
		_, err := Wait(context.Background(), c.cfg.Socket)
		waitErr <- err
	}()
	waitAccepted(t, s.ShimPid, conns)
	syscall.Kill(s.ShimPid, syscall.SIGKILL)
	select {
	case err := <-waitErr:
		if !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("Wait = %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the shim died")
	}
	st, err := c.rt.State(context.Background(), c.cfg.ID)
	if err != nil || st.Status != ocirt.StatusRunning {
		t.Errorf("state = %+v, %v; want running", st, err)
	}
	if _, err := Wait(context.Background(), c.cfg.Socket); err == nil {
		t.Error("Wait on a dead shim succeeded")
	}
	if _, ok, _ := ReadExit(c.cfg.ExitFile); ok {
		t.Error("exit file written by a killed shim")
	}
}

func TestTerminalAndResize(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sh", "-c", "sleep 1; echo hi; exit 5")
	c.setTerminal()
	c.start(t)
	if err := Resize(context.Background(), c.cfg.Socket, 100, 40); err != nil {
		t.Errorf("Resize: %v", err)
	}
	if st := c.wait(t); st.ExitCode != 5 {
		t.Errorf("exit %+v", st)
	}
	got := records(t, c.cfg.LogPath)
	if len(got) != 1 || got[0] != "stdout F hi\r" {
		t.Errorf("log = %q", got)
	}
}

func TestResizeWithoutTerminal(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sleep", "1000")
	c.start(t)
	if err := Resize(context.Background(), c.cfg.Socket, 80, 24); err == nil {
		t.Error("Resize of a non-terminal container succeeded")
	}
}

func TestAttachStdin(t *testing.T) {
	testutil.RequiresRoot(t)
	c := newContainer(t, "sh", "-c", "read x; echo got $x; echo bye >&2")
	c.cfg.Stdin, c.cfg.StdinOnce = true, true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, shimBin, c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(s.ShimPid, syscall.SIGKILL) })
	conns := shimSockets(t, s.ShimPid)
	var out, errb testutil.SyncBuffer
	done := make(chan error, 1)
	var st ExitStatus
	go func() {
		var err error
		st, err = Attach(ctx, c.cfg.Socket, AttachOpts{Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: &errb})
		done <- err
	}()
	waitAccepted(t, s.ShimPid, conns) // attached before the process runs
	if err := c.rt.Start(ctx, c.cfg.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if out.String() != "got hello\n" || errb.String() != "bye\n" || st.ExitCode != 0 {
		t.Errorf("attach stdout %q stderr %q exit %+v", out.String(), errb.String(), st)
	}
}

func TestPauseExitsOnSIGTERM(t *testing.T) {
	for _, argv := range [][]string{{shimBin, "pause"}, {"pause"}} {
		cmd := exec.Command(shimBin, argv[1:]...)
		cmd.Args[0] = argv[0]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: %v", argv, err)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v did not exit on SIGTERM", argv)
		}
	}
}
