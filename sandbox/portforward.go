package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/netns"
)

// portForwardDialTimeout bounds the connect to a port inside the pod.
const portForwardDialTimeout = 10 * time.Second

// PortForward connects stream to a TCP port on the pod's loopback
// (127.0.0.1, else [::1]) and copies both ways until the pod's side has
// sent everything and closed, or either side fails. The end of the
// client's data is passed on as a half close, so that request/response
// protocols finish cleanly. The socket is made inside the pod's network
// namespace; the copying happens outside it.
func (m *Manager) PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d: %w", port, errdefs.ErrInvalidArgument)
	}
	sb, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if !sb.Ready() {
		return fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	conn, err := dialPod(ctx, sb.NetNS, port)
	if err != nil {
		return err
	}
	defer conn.Close()

	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		_, err := io.Copy(conn, stream)
		if err != nil {
			// The client is gone: stop the other direction too.
			conn.Close()
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	if _, err := io.Copy(stream, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		select {
		case <-inDone:
			return nil // closed by the client's side
		default:
		}
		return fmt.Errorf("port %d in sandbox %s: %w", port, sb.ID, err)
	}
	return nil
}

// dialPod connects to port on loopback in the network namespace at nsPath
// (the host's for a host-network pod, whose nsPath is empty).
func dialPod(ctx context.Context, nsPath string, port int32) (net.Conn, error) {
	d := net.Dialer{Timeout: portForwardDialTimeout}
	p := strconv.Itoa(int(port))
	dial := func() (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
		if err == nil {
			return c, nil
		}
		if c6, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p)); err6 == nil {
			return c6, nil
		}
		return nil, err
	}
	if nsPath == "" {
		return dial()
	}
	var conn net.Conn
	err := netns.Do(nsPath, func() error {
		var err error
		conn, err = dial()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to port %d in the pod: %w", port, err)
	}
	return conn, nil
}
