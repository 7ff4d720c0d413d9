package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/streaming/streamingtest"
	"github.com/berth-runtime/berth/test/testutil"
)

// session runs an exec or attach URL over one of the protocols.
type session func(ctx context.Context, url string, o streamingtest.Options) error

var protocols = map[string]session{
	"spdy":         streamingtest.SPDY,
	"websocket":    streamingtest.WebSocket,
	"websocket v5": streamingtest.WebSocketV5, // what client-go's WebSocket executor offers
}

func exitCode(err error) int {
	var ee *streamingtest.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err == nil {
		return 0
	}
	return -1
}

func execURL(t *testing.T, d *daemon, req *runtimeapi.ExecRequest) string {
	t.Helper()
	resp, err := d.RT.Exec(ctxT(t), req)
	if err != nil {
		t.Fatalf("Exec %v: %v", req.Cmd, err)
	}
	if !strings.HasPrefix(resp.Url, "http://127.0.0.1:") {
		t.Errorf("Exec URL %q is not on loopback", resp.Url)
	}
	return resp.Url
}

func TestStreamingExec(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "streams")
	podID := runPod(t, d, pod)
	cid := runContainer(t, d, podID, pod, containerConfig("main", img, "sleep 100000"))
	waitState(t, d, cid, runtimeapi.ContainerState_CONTAINER_RUNNING)
	created := createContainer(t, d, podID, pod, containerConfig("idle", img, "sleep 100000"))

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  *runtimeapi.ExecRequest
			code codes.Code
		}{
			{"unknown container", &runtimeapi.ExecRequest{ContainerId: "feedbeef", Cmd: []string{"true"}, Stdout: true}, codes.NotFound},
			{"not running", &runtimeapi.ExecRequest{ContainerId: created, Cmd: []string{"true"}, Stdout: true}, codes.FailedPrecondition},
			{"no command", &runtimeapi.ExecRequest{ContainerId: cid, Stdout: true}, codes.InvalidArgument},
			{"no streams", &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"true"}}, codes.InvalidArgument},
			{"tty and stderr", &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"true"}, Tty: true, Stdout: true, Stderr: true}, codes.InvalidArgument},
		} {
			if _, err := d.RT.Exec(ctxT(t), tc.req); status.Code(err) != tc.code {
				t.Errorf("%s: Exec = %v, want %v", tc.name, err, tc.code)
			}
		}
		if _, err := d.RT.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: created, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Attach to a created container = %v", err)
		}
		if _, err := d.RT.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: "feedbeef"}); status.Code(err) != codes.NotFound {
			t.Errorf("PortForward to an unknown sandbox = %v", err)
		}
	})

	// Both half-close stdin at its end: SPDY by closing the stream,
	// WebSocket v5 with the CLOSE signal.
	for name, run := range map[string]session{"spdy": streamingtest.SPDY, "websocket v5": streamingtest.WebSocketV5} {
		t.Run(name+" stdin", func(t *testing.T) {
			url := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "cat; echo err >&2; exit 3"}, Stdin: true, Stdout: true, Stderr: true})
			var out, errb testutil.SyncBuffer
			err := run(ctxT(t), url, streamingtest.Options{Stdin: strings.NewReader("piped\nin\n"), Stdout: &out, Stderr: &errb})
			if exitCode(err) != 3 || out.String() != "piped\nin\n" || errb.String() != "err\n" {
				t.Errorf("exec = %v, stdout %q, stderr %q", err, out.String(), errb.String())
			}
			url = execURL(t, d, &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"cat"}, Stdin: true, Stdout: true})
			var catOut testutil.SyncBuffer
			if err := run(ctxT(t), url, streamingtest.Options{Stdin: strings.NewReader("echoed\n"), Stdout: &catOut}); err != nil || catOut.String() != "echoed\n" {
				t.Errorf("exec cat = %v, stdout %q", err, catOut.String())
			}
		})
	}

	for name, run := range protocols {
		t.Run(name+" output and exit code", func(t *testing.T) {
			url := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: true, Stderr: true})
			var out, errb testutil.SyncBuffer
			err := run(ctxT(t), url, streamingtest.Options{Stdout: &out, Stderr: &errb})
			if exitCode(err) != 3 || out.String() != "out\n" || errb.String() != "err\n" {
				t.Errorf("exec = %v, stdout %q, stderr %q", err, out.String(), errb.String())
			}
			url = execURL(t, d, &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"true"}, Stdout: true})
			if err := run(ctxT(t), url, streamingtest.Options{Stdout: io.Discard}); err != nil {
				t.Errorf("exec true = %v", err)
			}
		})

		t.Run(name+" tty and resize", func(t *testing.T) {
			url := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"sh"}, Tty: true, Stdin: true, Stdout: true})
			stdinR, stdinW := io.Pipe()
			resize := make(chan streamingtest.TermSize, 1)
			resize <- streamingtest.TermSize{Width: 123, Height: 45}
			var out testutil.SyncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctxT(t), url, streamingtest.Options{Stdin: stdinR, Stdout: &out, TTY: true, Resize: resize})
			}()
			// The resize and the typed line race; ask until the new size shows.
			waitFor(t, "stty size to print 45 123", func() bool {
				fmt.Fprintf(stdinW, "stty size; tty\n")
				time.Sleep(100 * time.Millisecond)
				return strings.Contains(out.String(), "45 123")
			})
			if !strings.Contains(out.String(), "/dev/pts/") {
				t.Errorf("tty output %q names no pty", out.String())
			}
			fmt.Fprintf(stdinW, "exit 7\n")
			select {
			case err := <-done:
				if exitCode(err) != 7 {
					t.Errorf("tty exec = %v, want exit code 7; output %q", err, out.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("tty exec did not end; output %q", out.String())
			}
		})
	}

	t.Run("client goes away", func(t *testing.T) {
		url := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: cid, Cmd: []string{"sleep", "777"}, Stdout: true})
		ctx, cancel := context.WithCancel(ctxT(t))
		go func() { streamingtest.SPDY(ctx, url, streamingtest.Options{Stdout: io.Discard}) }()
		running := func() string {
			res, _ := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c", "ps -o args | grep -c '^sleep 777'"}})
			return strings.TrimSpace(string(res.GetStdout()))
		}
		waitFor(t, "the exec'd sleep to run", func() bool { return running() == "1" })
		cancel()
		waitFor(t, "the exec'd sleep to be killed", func() bool { return running() == "0" })
	})
}

func TestStreamingAttach(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "attach")
	podID := runPod(t, d, pod)

	ticker := runContainer(t, d, podID, pod, containerConfig("ticker", img, `i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done`))
	waitState(t, d, ticker, runtimeapi.ContainerState_CONTAINER_RUNNING)

	t.Run("three attachers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		var outs [3]testutil.SyncBuffer
		var wg sync.WaitGroup
		for i, run := range []session{streamingtest.SPDY, streamingtest.WebSocket, streamingtest.WebSocketV5} {
			resp, err := d.RT.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: ticker, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(ctx, resp.Url, streamingtest.Options{Stdout: &outs[i], Stderr: io.Discard})
			}()
		}
		waitFor(t, "all attachers to see output", func() bool {
			for i := range outs {
				if strings.Count(outs[i].String(), "tick") < 3 {
					return false
				}
			}
			return true
		})
		cancel()
		wg.Wait()
		time.Sleep(300 * time.Millisecond)
		if st := containerStatus(t, d, ticker); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("after detaching the container is %v", st.State)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		cfg := containerConfig("cat", img)
		cfg.Command, cfg.Args = []string{"cat"}, nil
		cfg.Stdin = true
		cat := runContainer(t, d, podID, pod, cfg)
		waitState(t, d, cat, runtimeapi.ContainerState_CONTAINER_RUNNING)
		for i, line := range []string{"hello", "again", "v5"} {
			run := []session{streamingtest.SPDY, streamingtest.SPDY, streamingtest.WebSocketV5}[i]
			resp, err := d.RT.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: cat, Stdin: true, Stdout: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(ctxT(t))
			stdinR, stdinW := io.Pipe()
			var out testutil.SyncBuffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, resp.Url, streamingtest.Options{Stdin: stdinR, Stdout: &out}) }()
			fmt.Fprintln(stdinW, line)
			waitFor(t, "cat to echo "+line, func() bool { return strings.Contains(out.String(), line+"\n") })
			cancel() // detach
			<-done
			time.Sleep(200 * time.Millisecond)
			if st := containerStatus(t, d, cat); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("after detaching the container is %v", st.State)
			}
		}
	})
}

func TestStreamingAttachTTY(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "attachtty")
	podID := runPod(t, d, pod)
	cfg := containerConfig("shell", img)
	cfg.Command, cfg.Args = []string{"sh"}, nil
	cfg.Stdin, cfg.Tty = true, true
	sh := runContainer(t, d, podID, pod, cfg)
	waitState(t, d, sh, runtimeapi.ContainerState_CONTAINER_RUNNING)

	for _, tc := range []struct {
		name string
		run  session
		size streamingtest.TermSize
	}{
		{"spdy", streamingtest.SPDY, streamingtest.TermSize{Width: 101, Height: 33}},
		{"websocket v5", streamingtest.WebSocketV5, streamingtest.TermSize{Width: 111, Height: 44}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := d.RT.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: sh, Stdin: true, Stdout: true, Tty: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(ctxT(t))
			stdinR, stdinW := io.Pipe()
			resize := make(chan streamingtest.TermSize, 1)
			resize <- tc.size
			var out testutil.SyncBuffer
			done := make(chan error, 1)
			go func() {
				done <- tc.run(ctx, resp.Url, streamingtest.Options{Stdin: stdinR, Stdout: &out, TTY: true, Resize: resize})
			}()
			want := fmt.Sprintf("%d %d", tc.size.Height, tc.size.Width)
			waitFor(t, "stty size to print "+want, func() bool {
				fmt.Fprintf(stdinW, "stty size\n")
				time.Sleep(100 * time.Millisecond)
				return strings.Contains(out.String(), want)
			})
			cancel()
			<-done
			time.Sleep(200 * time.Millisecond)
			if st := containerStatus(t, d, sh); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("after detaching the container is %v", st.State)
			}
		})
	}
}

func TestStreamingPortForward(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "forward")
	podID := runPod(t, d, pod)
	// An echo server in the pod: one cat per connection.
	echo := containerConfig("echo", img, "echo listening; exec nc -ll -p 8080 -e cat")
	cid := runContainer(t, d, podID, pod, echo)
	waitState(t, d, cid, runtimeapi.ContainerState_CONTAINER_RUNNING)
	waitLog(t, logPath(pod, echo), "listening")

	// The same session over SPDY and tunneled in a WebSocket, as
	// client-go's WebSocket port-forward (kubectl since 1.30) sends it.
	for _, tc := range []struct {
		name string
		dial func(context.Context, string) (*streamingtest.PortForwarder, error)
	}{
		{"SPDY", streamingtest.DialPortForward},
		{"WebSocketTunnel", streamingtest.DialPortForwardTunnel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := d.RT.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}})
			if err != nil {
				t.Fatal(err)
			}
			pf, err := tc.dial(ctxT(t), resp.Url)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()

			var streams [2]*streamingtest.Stream
			for i := range streams {
				var err error
				var s *streamingtest.Stream
				// nc may not listen yet right after it started.
				waitFor(t, "a forwarded connection", func() bool {
					if s, err = pf.Open(8080); err != nil {
						t.Fatal(err)
					}
					if _, err := fmt.Fprintf(s, "stream %d\n", i); err != nil {
						return false
					}
					buf := make([]byte, 9)
					_, err := io.ReadFull(s, buf)
					if err != nil || string(buf) != fmt.Sprintf("stream %d\n", i) {
						s.Close()
						return false
					}
					return true
				})
				streams[i] = s
			}
			// Both connections are open at once: each echoes more, in reverse order.
			for i := len(streams) - 1; i >= 0; i-- {
				fmt.Fprintf(streams[i], "more %d\n", i)
				buf := make([]byte, 7)
				if _, err := io.ReadFull(streams[i], buf); err != nil || string(buf) != fmt.Sprintf("more %d\n", i) {
					t.Fatalf("stream %d: %q %v", i, buf, err)
				}
			}
			// A half close ends cat, which closes the connection: EOF, no error.
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB round trip
			for i, s := range streams {
				go func() {
					s.Write(big)
					s.CloseWrite()
				}()
				got, err := io.ReadAll(s)
				if err != nil || !bytes.Equal(got, big) {
					t.Errorf("stream %d: read %d bytes, %v", i, len(got), err)
				}
				if e := s.Err(5 * time.Second); e != "" {
					t.Errorf("stream %d: server error %q", i, e)
				}
			}
			// A port nobody listens on fails on the error stream.
			// The server may reset the data stream before it is fully open; the
			// reason is on the error stream either way.
			s, err := pf.Open(9)
			if s == nil {
				t.Fatal(err)
			}
			if e := s.Err(10 * time.Second); !strings.Contains(e, "refused") {
				t.Errorf("forwarding to a closed port: error stream %q", e)
			}
			if err := pf.Close(); err != nil {
				t.Errorf("closing the session: %v", err)
			}
			select {
			case <-pf.Done():
			case <-time.After(10 * time.Second):
				t.Error("the session did not end after Close")
			}
		})
	}
}
