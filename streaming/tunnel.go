package streaming

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"

	"golang.org/x/net/websocket"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// client-go's WebSocket port-forward (kubectl since 1.30, critest
// -websocket-portforward) does not speak a WebSocket channel protocol: it
// tunnels the SPDY/3.1 portforward.k8s.io session in a WebSocket. It
// offers the subprotocol "SPDY/3.1+portforward.k8s.io" and, once the
// WebSocket is up, writes the SPDY session's frames as binary messages
// and reads the server's from them; no HTTP upgrade happens inside the
// tunnel. cri-streaming refuses such a request, so berth serves it as the
// API server's tunneling handler does: it hands cri-streaming a copy of
// the request that asks for a SPDY upgrade, with a ResponseWriter whose
// Hijack upgrades the real request to the WebSocket (with the protocol
// cri-streaming chose) and returns the WebSocket as the connection. The
// 101 response cri-streaming writes for SPDY is not sent: the WebSocket
// handshake's 101 stands for it. A refusal (a bad token, no supported
// protocol) goes to the client as the plain HTTP response it is.
const tunnelPrefix = "SPDY/3.1+"

// isPortForwardPath reports whether p is /portforward/{token}.
func isPortForwardPath(p string) bool {
	p = strings.Trim(path.Clean("/"+p), "/")
	kind, token, found := strings.Cut(p, "/")
	return found && kind == "portforward" && token != "" && !strings.Contains(token, "/")
}

// tunnelProtocols are the SPDY protocols a tunneling request offers, in
// its order, without the tunneling prefix.
func tunnelProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if p, ok := strings.CutPrefix(strings.TrimSpace(p), tunnelPrefix); ok && p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// serveTunnel serves a port-forward over SPDY tunneled in a WebSocket.
func (s *Server) serveTunnel(w http.ResponseWriter, r *http.Request) {
	protocols := tunnelProtocols(r)
	up := r.Clone(r.Context())
	for k := range up.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Sec-Websocket-") {
			up.Header.Del(k)
		}
	}
	up.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	up.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	up.Header.Del(httpstream.HeaderProtocolVersion)
	for _, p := range protocols {
		up.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	tw := &tunnelWriter{w: w, r: r, header: http.Header{}}
	s.lib.ServeHTTP(tw, up)
	tw.wait()
}

// tunnelWriter is the ResponseWriter cri-streaming serves a tunneled
// port-forward on.
type tunnelWriter struct {
	w      http.ResponseWriter
	r      *http.Request
	header http.Header
	// status is what cri-streaming wrote: 101 is kept for Hijack, anything
	// else goes to the client.
	status int
	tunnel *tunnelConn
}

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) WriteHeader(code int) {
	if t.status != 0 {
		return
	}
	t.status = code
	if code == http.StatusSwitchingProtocols {
		return
	}
	for k, v := range t.header {
		if k == httpstream.HeaderConnection || k == httpstream.HeaderUpgrade {
			continue
		}
		t.w.Header()[k] = v
	}
	t.w.WriteHeader(code)
}

func (t *tunnelWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	if t.status == http.StatusSwitchingProtocols {
		return 0, http.ErrHijacked
	}
	return t.w.Write(p)
}

// Hijack upgrades the client's request to a WebSocket with the protocol
// cri-streaming chose and returns it as the connection.
func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.status != http.StatusSwitchingProtocols || t.tunnel != nil {
		return nil, nil, errors.New("tunnel: hijack without a 101 response")
	}
	chosen := t.header.Get(httpstream.HeaderProtocolVersion)
	if chosen == "" {
		return nil, nil, errors.New("tunnel: no protocol chosen")
	}
	tc := &tunnelConn{done: make(chan struct{}), served: make(chan struct{})}
	ready := make(chan struct{})
	srv := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			for _, p := range cfg.Protocol {
				if p == tunnelPrefix+chosen {
					cfg.Protocol = []string{p}
					return nil
				}
			}
			return fmt.Errorf("protocol %q not offered", tunnelPrefix+chosen)
		},
		Handler: func(ws *websocket.Conn) {
			ws.PayloadType = websocket.BinaryFrame
			tc.Conn = ws
			close(ready)
			// The connection lives until it is closed: returning closes
			// the hijacked connection underneath.
			<-tc.done
		},
	}
	go func() {
		defer close(tc.served)
		srv.ServeHTTP(t.w, t.r)
	}()
	select {
	case <-ready:
	case <-tc.served:
		return nil, nil, errors.New("tunnel: websocket handshake failed")
	}
	t.tunnel = tc
	return tc, bufio.NewReadWriter(bufio.NewReader(tc), bufio.NewWriter(tc)), nil
}

// wait ends the tunnel, if there is one, once cri-streaming's handler has
// returned (it returns when the session is over), and returns when the
// WebSocket server goroutine is done with the real ResponseWriter.
func (t *tunnelWriter) wait() {
	if t.tunnel != nil {
		t.tunnel.Close()
		<-t.tunnel.served
	}
}

// tunnelConn is the WebSocket as a net.Conn: a write is a binary message,
// reads return the payloads of the messages received (x/net/websocket's
// Conn does both); Close sends a close frame and ends the connection.
type tunnelConn struct {
	*websocket.Conn
	once   sync.Once
	done   chan struct{}
	served chan struct{}
}

func (c *tunnelConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		close(c.done)
	})
	return err
}
