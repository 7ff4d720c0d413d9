// Package streaming serves the CRI's streaming calls — exec, attach and
// port-forward — over HTTP, in the protocols kubectl, crictl and the
// kubelet speak (SPDY/3.1 with the channel.k8s.io and portforward.k8s.io
// subprotocols, WebSocket with channel.k8s.io up to v5, and port-forward's
// SPDY tunneled in a WebSocket). The protocol side is k8s.io/cri-streaming's
// server, as in containerd and CRI-O, but for WebSocket v5.channel.k8s.io
// exec and attach, which it does not speak and berth serves itself
// (websocket.go), and the WebSocket tunnel, which berth unwraps in front
// of it (tunnel.go); this package bridges both to the container and
// sandbox managers and owns the listener.
//
// The CRI server validates a request and asks GetExec, GetAttach or
// GetPortForward for a URL with a one-time token (valid for a minute); the
// client then connects to that URL.
package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	k8s "k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// Options configure a Server.
type Options struct {
	// Address is host:port to listen on; port 0 picks a free one.
	Address    string
	Containers Containers
	Sandboxes  Sandboxes
	Logger     *slog.Logger
}

// Server is the streaming HTTP server. New listens; Serve serves until
// Close.
type Server struct {
	lib    k8s.Server
	bridge *bridge
	tokens *tokens
	// idleTimeout ends a WebSocket v5 session that is idle this long, as
	// cri-streaming does for the others.
	idleTimeout time.Duration
	http        *http.Server
	ln          *listener
	url         *url.URL
	log         *slog.Logger
}

// New listens on o.Address and prepares the server.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	base := &url.URL{Scheme: "http", Host: urlHost(ln.Addr().(*net.TCPAddr))}
	cfg := k8s.DefaultConfig
	cfg.Addr = ln.Addr().String()
	cfg.BaseURL = base
	br := &bridge{containers: o.Containers, sandboxes: o.Sandboxes, log: o.Logger}
	lib, err := k8s.NewServer(cfg, br)
	if err != nil {
		ln.Close()
		return nil, err
	}
	l := &listener{Listener: ln, conns: map[*conn]struct{}{}}
	s := &Server{lib: lib, bridge: br, tokens: newTokens(), idleTimeout: cfg.StreamIdleTimeout, ln: l, url: base, log: o.Logger}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		// A request's context ends when its connection does, hijacked
		// (upgraded) ones included, which net/http does not do: that is
		// how an exec learns that its client went away.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			tc, ok := c.(*conn)
			if !ok {
				return ctx
			}
			ctx, cancel := context.WithCancel(ctx)
			context.AfterFunc(tc.ctx, cancel)
			return ctx
		},
	}
	return s, nil
}

// urlHost is the host:port for URLs: a wildcard address is reached on
// loopback (the kubelet, which proxies the streams, runs on this node).
func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.url.String() }

// Serve serves until Close; it then returns nil.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and ends every stream: execs are killed, attached
// clients detached, forwarded connections closed.
func (s *Server) Close() error {
	err := s.http.Close()
	s.ln.closeAll()
	return err
}

// GetExec returns the URL of an exec session for a validated request.
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	resp, err := s.lib.GetExec(req)
	if err != nil {
		return nil, err
	}
	if err := s.tokens.add(resp.Url, req); err != nil {
		return nil, err
	}
	return resp, nil
}

// GetAttach returns the URL of an attach session for a validated request.
func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	resp, err := s.lib.GetAttach(req)
	if err != nil {
		return nil, err
	}
	if err := s.tokens.add(resp.Url, req); err != nil {
		return nil, err
	}
	return resp, nil
}

// ServeHTTP serves a session. An exec or attach URL's token is consumed
// here first, whichever side serves it: a WebSocket upgrade offering
// v5.channel.k8s.io is served by berth (serveV5), anything else by
// cri-streaming, which then consumes its own copy of the token. A
// port-forward WebSocket upgrade offering SPDY tunneling (tunnel.go) is
// served by cri-streaming through berth's tunnel.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && isPortForwardPath(r.URL.Path) && wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
		s.serveTunnel(w, r)
		return
	}
	kind, token, ok := sessionPath(r.URL.Path)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
		s.lib.ServeHTTP(w, r)
		return
	}
	req, ok := s.tokens.consume(token)
	if !ok {
		http.NotFound(w, r)
		return
	}
	var se session
	switch req := req.(type) {
	case *runtimeapi.ExecRequest:
		ok = kind == "exec"
		se = execSession(req)
	case *runtimeapi.AttachRequest:
		ok = kind == "attach"
		se = attachSession(req)
	default:
		ok = false
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		s.serveV5(w, r, se)
		return
	}
	s.lib.ServeHTTP(w, r)
}

// GetPortForward returns the URL of a port-forward session for a
// validated request.
func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.lib.GetPortForward(req)
}

// listener tracks its connections so that Close can end hijacked ones too.
type listener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &conn{Conn: c, ctx: ctx, cancel: cancel, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		cancel()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *listener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// conn cancels ctx when the peer is gone: a read fails with anything but
// a deadline (net/http sets past deadlines itself, to stop its background
// read when a handler hijacks), or the connection is closed.
type conn struct {
	net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	l      *listener
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.cancel()
	}
	return n, err
}

func (c *conn) Close() error {
	c.cancel()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
