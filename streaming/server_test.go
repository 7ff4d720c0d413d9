package streaming_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/streaming"
	"github.com/berth-runtime/berth/streaming/streamingtest"

	"github.com/berth-runtime/berth/test/testutil"
)

// fake echoes stdin to stdout, writes "err" to stderr and exits with the
// code in cmd[0]; "block" waits for ctx and records that it ended;
// "resize" prints each terminal size it gets until stdin ends. Attach
// echoes stdin to stdout.
type fake struct {
	cancelled chan struct{}
}

func (f *fake) Exec(ctx context.Context, id string, o runtime.ExecOpts) (int, error) {
	if o.Cmd[0] == "block" {
		<-ctx.Done()
		close(f.cancelled)
		return -1, ctx.Err()
	}
	if o.Cmd[0] == "resize" {
		go io.Copy(io.Discard, o.Stdin)
		for sz := range o.Resize {
			fmt.Fprintf(o.Stdout, "%dx%d\n", sz.Width, sz.Height)
		}
		return 0, nil
	}
	if o.Stdin != nil {
		io.Copy(o.Stdout, o.Stdin)
	}
	if o.Stderr != nil {
		o.Stderr.Write([]byte("err"))
	}
	switch o.Cmd[0] {
	case "3":
		return 3, nil
	}
	return 0, nil
}

func (f *fake) Attach(ctx context.Context, id string, o runtime.AttachOpts) error {
	if o.Stdin != nil {
		io.Copy(o.Stdout, o.Stdin)
	}
	return nil
}

func (f *fake) PortForward(ctx context.Context, id string, port int32, s io.ReadWriteCloser) error {
	b, _ := io.ReadAll(s)
	s.Write(bytes.ToUpper(b))
	return nil
}

func newServer(t *testing.T) (*streaming.Server, *fake) {
	f := &fake{cancelled: make(chan struct{})}
	s, err := streaming.New(streaming.Options{Address: "127.0.0.1:0", Containers: f, Sandboxes: f})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s, f
}

func TestExec(t *testing.T) {
	s, _ := newServer(t)
	for _, proto := range []string{"spdy", "websocket", "websocket v5"} {
		t.Run(proto, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			run := streamingtest.SPDY
			stdin := true
			switch proto {
			case "websocket":
				run = streamingtest.WebSocket
				stdin = false // v4 cannot half-close stdin
			case "websocket v5":
				run = streamingtest.WebSocketV5
			}
			resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"3"}, Stdin: stdin, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			o := streamingtest.Options{Stdout: &out, Stderr: &errb}
			if stdin {
				o.Stdin = strings.NewReader("hello")
			}
			err = run(ctx, resp.Url, o)
			var ee *streamingtest.ExitError
			if !errors.As(err, &ee) || ee.Code != 3 {
				t.Fatalf("exec = %v, want exit code 3", err)
			}
			if want := map[bool]string{true: "hello", false: ""}[stdin]; out.String() != want || errb.String() != "err" {
				t.Errorf("stdout %q stderr %q", out.String(), errb.String())
			}
		})
	}
}

func TestExecClientGoesAway(t *testing.T) {
	for name, run := range map[string]func(context.Context, string, streamingtest.Options) error{
		"spdy": streamingtest.SPDY, "websocket v5": streamingtest.WebSocketV5,
	} {
		t.Run(name, func(t *testing.T) {
			s, f := newServer(t)
			resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"block"}, Stdout: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() { time.Sleep(300 * time.Millisecond); cancel() }()
			run(ctx, resp.Url, streamingtest.Options{Stdout: io.Discard})
			select {
			case <-f.cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the exec's context did not end when the client went away")
			}
		})
	}
}

func TestPortForward(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p"})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := streamingtest.DialPortForward(context.Background(), resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	st, err := pf.Open(80)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("abc"))
	st.CloseWrite()
	b, _ := io.ReadAll(st)
	if string(b) != "ABC" {
		t.Errorf("got %q", b)
	}
}

func TestPortForwardTunnel(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p"})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := streamingtest.DialPortForwardTunnel(context.Background(), resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	var sts [2]*streamingtest.Stream
	for i := range sts {
		if sts[i], err = pf.Open(80); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range sts {
		fmt.Fprintf(st, "stream %d", i)
	}
	for i := len(sts) - 1; i >= 0; i-- {
		sts[i].CloseWrite()
		b, _ := io.ReadAll(sts[i])
		if want := fmt.Sprintf("STREAM %d", i); string(b) != want {
			t.Errorf("stream %d: got %q, want %q", i, b, want)
		}
		if e := sts[i].Err(time.Second); e != "" {
			t.Errorf("stream %d: error %q", i, e)
		}
	}
	if err := pf.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	select {
	case <-pf.Done():
	case <-time.After(5 * time.Second):
		t.Error("the session did not end after Close")
	}
	// The token was used: a second tunnel is refused.
	if pf, err := streamingtest.DialPortForwardTunnel(context.Background(), resp.Url); err == nil {
		pf.Close()
		t.Error("a used URL worked again")
	}
}

func TestTokenIsOneTime(t *testing.T) {
	s, _ := newServer(t)
	resp, _ := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"0"}, Stdout: true})
	ctx := context.Background()
	if err := streamingtest.SPDY(ctx, resp.Url, streamingtest.Options{Stdout: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if err := streamingtest.SPDY(ctx, resp.Url, streamingtest.Options{Stdout: io.Discard}); err == nil {
		t.Error("a used URL worked again")
	}
}

func TestExecV5Success(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"0"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := streamingtest.WebSocketV5(context.Background(), resp.Url, streamingtest.Options{Stdout: &out}); err != nil || out.String() != "" {
		t.Errorf("exec = %v, stdout %q", err, out.String())
	}
}

func TestExecV5Resize(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"resize"}, Tty: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resize := make(chan streamingtest.TermSize)
	out := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- streamingtest.WebSocketV5(ctx, resp.Url, streamingtest.Options{Stdin: strings.NewReader(""), Stdout: out, TTY: true, Resize: resize})
	}()
	resize <- streamingtest.TermSize{Width: 80, Height: 24}
	resize <- streamingtest.TermSize{Width: 123, Height: 45}
	for !strings.Contains(out.String(), "123x45") {
		if ctx.Err() != nil {
			t.Fatalf("resizes not seen: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(resize)
	cancel()
	<-done
	if out.String() != "80x24\n123x45\n" {
		t.Errorf("got %q", out.String())
	}
}

func TestAttachV5(t *testing.T) {
	s, _ := newServer(t)
	resp, err := s.GetAttach(&runtimeapi.AttachRequest{ContainerId: "c", Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = streamingtest.WebSocketV5(context.Background(), resp.Url, streamingtest.Options{Stdin: strings.NewReader("typed"), Stdout: &out})
	if err != nil || out.String() != "typed" {
		t.Errorf("attach = %v, stdout %q", err, out.String())
	}
}

// A URL works once, whichever protocol uses it first.
func TestTokenIsOneTimeAcrossProtocols(t *testing.T) {
	s, _ := newServer(t)
	ctx := context.Background()
	o := streamingtest.Options{Stdout: io.Discard}
	protocols := map[string]func(context.Context, string, streamingtest.Options) error{
		"spdy": streamingtest.SPDY, "websocket": streamingtest.WebSocket, "v5": streamingtest.WebSocketV5,
	}
	for first, run1 := range protocols {
		for second, run2 := range protocols {
			resp, _ := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"0"}, Stdout: true})
			if err := run1(ctx, resp.Url, o); err != nil {
				t.Fatalf("%s: %v", first, err)
			}
			if err := run2(ctx, resp.Url, o); err == nil {
				t.Errorf("a URL used over %s worked again over %s", first, second)
			}
		}
	}
	// An exec URL is not an attach URL.
	resp, _ := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"0"}, Stdout: true})
	if err := streamingtest.WebSocketV5(ctx, strings.Replace(resp.Url, "/exec/", "/attach/", 1), o); err == nil {
		t.Error("an exec token worked for attach")
	}
}
