// Package streamingtest is a client of the CRI streaming protocols for
// tests: exec and attach over SPDY (v4.channel.k8s.io, as kubectl and
// crictl speak it) and WebSocket (v4.channel.k8s.io and v5.channel.k8s.io,
// the binary channel framing; v5 is what client-go's WebSocket executor
// offers), and port-forward over SPDY (portforward.k8s.io), directly or
// tunneled in a WebSocket as client-go's WebSocket port-forward does. It
// speaks the wire protocol itself, on k8s.io/streaming's SPDY transport
// and golang.org/x/net/websocket, the way client-go's remotecommand and
// portforward packages do, so that tests exercise berth's server from
// outside.
package streamingtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// TermSize is a terminal size sent on the resize stream.
type TermSize struct {
	Width, Height uint16
}

// Options are a session's streams. They must match the CRI request the
// URL was made for: the server expects exactly those streams. A nil
// Stdout or Stderr is not requested; a TTY session has no Stderr.
type Options struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Resize         <-chan TermSize
}

// ExitError is a command's non-zero exit reported by the server.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("command exited with code %d", e.Code) }

// status is the v4 error stream's message (a metav1.Status).
type status struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details *struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// result turns a v4 status into nil, an *ExitError or an error.
func result(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var st status
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("bad status %q: %w", b, err)
	}
	if st.Status == "Success" {
		return nil
	}
	if st.Reason == "NonZeroExitCode" && st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Reason == "ExitCode" {
				n, err := strconv.Atoi(c.Message)
				if err == nil {
					return &ExitError{Code: n}
				}
			}
		}
	}
	return fmt.Errorf("server: %s", st.Message)
}

const (
	remoteCommandV4 = "v4.channel.k8s.io"
	remoteCommandV5 = "v5.channel.k8s.io"
	portForwardV1   = "portforward.k8s.io"
	// spdyTunnelPrefix prefixes a SPDY protocol tunneled in a WebSocket.
	spdyTunnelPrefix = "SPDY/3.1+"
)

// closeSignal starts a v5 message that half-closes the channel in its
// second byte.
const closeSignal = 255

func dialSPDY(ctx context.Context, rawURL, protocol string) (httpstream.Connection, error) {
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Add(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		return nil, err
	}
	if got := resp.Header.Get(httpstream.HeaderProtocolVersion); got != protocol {
		conn.Close()
		return nil, fmt.Errorf("server chose protocol %q, not %q", got, protocol)
	}
	return conn, nil
}

// SPDY runs an exec or attach session at rawURL over SPDY and returns
// when the server reports the end: nil, an *ExitError, or an error. The
// connection is closed when ctx ends (the client going away).
func SPDY(ctx context.Context, rawURL string, o Options) error {
	conn, err := dialSPDY(ctx, rawURL, remoteCommandV4)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	create := func(kind string) (httpstream.Stream, error) {
		h := http.Header{}
		h.Set("streamType", kind)
		return conn.CreateStream(h)
	}
	errStream, err := create("error")
	if err != nil {
		return err
	}
	statusCh := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(errStream)
		statusCh <- b
	}()
	errStream.Close() // nothing to send on it
	if o.Stdin != nil {
		s, err := create("stdin")
		if err != nil {
			return err
		}
		go func() {
			io.Copy(s, o.Stdin)
			s.Close() // half close: EOF on the process's stdin
		}()
	}
	var wg sync.WaitGroup
	outputs := []struct {
		kind string
		w    io.Writer
	}{{"stdout", o.Stdout}}
	if !o.TTY {
		outputs = append(outputs, struct {
			kind string
			w    io.Writer
		}{"stderr", o.Stderr})
	}
	for _, out := range outputs {
		if out.w == nil {
			continue
		}
		s, err := create(out.kind)
		if err != nil {
			return err
		}
		s.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(out.w, s)
		}()
	}
	if o.TTY {
		s, err := create("resize")
		if err != nil {
			return err
		}
		enc := json.NewEncoder(s)
		go sendSizes(ctx, o.Resize, func(sz TermSize) error { return enc.Encode(sz) })
	}
	select {
	case b := <-statusCh:
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return result(b)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WebSocket runs an exec or attach session at rawURL over WebSocket
// (v4.channel.k8s.io: each binary message is a channel byte and data).
// v4 cannot half-close stdin: the session ends with the command.
func WebSocket(ctx context.Context, rawURL string, o Options) error {
	return webSocket(ctx, rawURL, o, remoteCommandV4)
}

// WebSocketV5 runs an exec or attach session at rawURL over WebSocket
// v5.channel.k8s.io, as client-go's WebSocket executor does: v4's framing,
// and at the end of Stdin the CLOSE signal {255, 0} half-closes stdin (the
// process reads EOF).
func WebSocketV5(ctx context.Context, rawURL string, o Options) error {
	return webSocket(ctx, rawURL, o, remoteCommandV5)
}

// dialWebSocket opens a WebSocket to an http:// URL offering protocol
// alone, and fails unless the server chose it.
func dialWebSocket(ctx context.Context, rawURL, protocol string) (*websocket.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	cfg, err := websocket.NewConfig(u.String(), "http://"+u.Host)
	if err != nil {
		return nil, err
	}
	cfg.Protocol = []string{protocol}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	if got := ws.Config().Protocol; len(got) != 1 || got[0] != protocol {
		ws.Close()
		return nil, fmt.Errorf("server chose protocol %q, not %q", got, protocol)
	}
	return ws, nil
}

// sendSizes sends the sizes from in until in closes, send fails or ctx
// ends.
func sendSizes(ctx context.Context, in <-chan TermSize, send func(TermSize) error) {
	for {
		select {
		case sz, ok := <-in:
			if !ok || send(sz) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func webSocket(ctx context.Context, rawURL string, o Options, protocol string) error {
	ws, err := dialWebSocket(ctx, rawURL, protocol)
	if err != nil {
		return err
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	var wmu sync.Mutex
	send := func(ch byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return websocket.Message.Send(ws, append([]byte{ch}, p...))
	}
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := o.Stdin.Read(buf)
				if n > 0 && send(0, buf[:n]) != nil {
					return
				}
				if err != nil {
					if protocol == remoteCommandV5 {
						send(closeSignal, []byte{0})
					}
					return
				}
			}
		}()
	}
	if o.TTY {
		go sendSizes(ctx, o.Resize, func(sz TermSize) error {
			b, _ := json.Marshal(sz)
			return send(4, b)
		})
	}
	var st []byte
	for {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return result(st)
			}
			return err
		}
		if len(msg) == 0 {
			continue
		}
		switch p := msg[1:]; msg[0] {
		case 1:
			if o.Stdout != nil {
				o.Stdout.Write(p)
			}
		case 2:
			if o.Stderr != nil {
				o.Stderr.Write(p)
			}
		case 3:
			st = append(st, p...)
		}
	}
}

// PortForwarder is a port-forward session over SPDY: each Open is one
// forwarded connection, several may be open at once.
type PortForwarder struct {
	conn httpstream.Connection
	next atomic.Int32
}

// DialPortForward connects to a port-forward URL.
func DialPortForward(ctx context.Context, rawURL string) (*PortForwarder, error) {
	conn, err := dialSPDY(ctx, rawURL, portForwardV1)
	if err != nil {
		return nil, err
	}
	return &PortForwarder{conn: conn}, nil
}

// DialPortForwardTunnel connects to a port-forward URL the way
// client-go's WebSocket port-forward (kubectl since 1.30) does: a
// WebSocket offering SPDY/3.1+portforward.k8s.io, in whose binary
// messages the same SPDY session runs as after DialPortForward's HTTP
// upgrade.
func DialPortForwardTunnel(ctx context.Context, rawURL string) (*PortForwarder, error) {
	ws, err := dialWebSocket(ctx, rawURL, spdyTunnelPrefix+portForwardV1)
	if err != nil {
		return nil, err
	}
	ws.PayloadType = websocket.BinaryFrame
	conn, err := spdy.NewClientConnection(ws)
	if err != nil {
		ws.Close()
		return nil, err
	}
	return &PortForwarder{conn: conn}, nil
}

// Close ends the session and every connection in it.
func (p *PortForwarder) Close() error { return p.conn.Close() }

// Done is closed when the session has ended, closed by either side.
func (p *PortForwarder) Done() <-chan bool { return p.conn.CloseChan() }

// Stream is one forwarded connection.
type Stream struct {
	httpstream.Stream
	errs chan string
}

// Open starts a connection to port in the pod, as kubectl does for each
// local connection: an error stream, then a data stream, paired by
// request id.
func (p *PortForwarder) Open(port int) (*Stream, error) {
	id := strconv.Itoa(int(p.next.Add(1)))
	h := http.Header{}
	h.Set("streamType", "error")
	h.Set("port", strconv.Itoa(port))
	h.Set("requestID", id)
	errStream, err := p.conn.CreateStream(h)
	if err != nil {
		return nil, err
	}
	errStream.Close()
	s := &Stream{errs: make(chan string, 1)}
	go func() {
		b, _ := io.ReadAll(errStream)
		s.errs <- string(b)
	}()
	h.Set("streamType", "data")
	if s.Stream, err = p.conn.CreateStream(h); err != nil {
		// The server may refuse the port (and reset the data stream)
		// before the stream's reply arrives: s.Err still has its reason.
		return s, err
	}
	return s, nil
}

// CloseWrite half-closes the connection: the pod's side reads EOF.
func (s *Stream) CloseWrite() error { return s.Stream.Close() }

// Close ends both directions.
func (s *Stream) Close() error { return s.Stream.Reset() }

// Err returns what the server reported on the error stream ("" if
// nothing), waiting for the stream's end up to timeout.
func (s *Stream) Err(timeout time.Duration) string {
	select {
	case e := <-s.errs:
		s.errs <- e
		return e
	case <-time.After(timeout):
		return ""
	}
}
