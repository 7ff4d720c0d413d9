package streaming_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/streaming"
	"github.com/berth-runtime/berth/streaming/streamingtest"
)

// fake echoes stdin to stdout, writes "err" to stderr and exits with the
// code in cmd[0]; "block" waits for ctx and records that it ended.
type fake struct {
	cancelled chan struct{}
}

func (f *fake) Exec(ctx context.Context, id string, o runtime.ExecOpts) (int, error) {
	if o.Cmd[0] == "block" {
		<-ctx.Done()
		close(f.cancelled)
		return -1, ctx.Err()
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

func (f *fake) Attach(ctx context.Context, id string, o runtime.AttachOpts) error { return nil }

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
	for _, proto := range []string{"spdy", "websocket"} {
		t.Run(proto, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			run := streamingtest.SPDY
			stdin := true
			if proto == "websocket" {
				run = streamingtest.WebSocket
				stdin = false // v4 cannot half-close stdin
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
	s, f := newServer(t)
	resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"block"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	streamingtest.SPDY(ctx, resp.Url, streamingtest.Options{Stdout: io.Discard})
	select {
	case <-f.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the exec's context did not end when the client went away")
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
