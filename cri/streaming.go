package cri

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
)

// Streamer hands out URLs of the streaming server (*streaming.Server) for
// requests validated here.
type Streamer interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// Exec returns the URL at which the client runs a command in a running
// container, with its streams attached.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.Cmd) == 0 {
		return nil, fmt.Errorf("exec needs a command: %w", errdefs.ErrInvalidArgument)
	}
	if err := validateStreams(req.Stdin, req.Stdout, req.Stderr, req.Tty); err != nil {
		return nil, err
	}
	id, err := s.runningContainer(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	r := proto.Clone(req).(*runtimeapi.ExecRequest)
	r.ContainerId = id
	return s.streams.GetExec(r)
}

// Attach returns the URL at which the client attaches to a running
// container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := validateStreams(req.Stdin, req.Stdout, req.Stderr, req.Tty); err != nil {
		return nil, err
	}
	id, err := s.runningContainer(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	r := proto.Clone(req).(*runtimeapi.AttachRequest)
	r.ContainerId = id
	return s.streams.GetAttach(r)
}

// PortForward returns the URL at which the client forwards connections
// to ports of a ready sandbox (any port: the request's list is advisory,
// as in containerd and CRI-O).
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if req.PodSandboxId == "" {
		return nil, fmt.Errorf("no sandbox id: %w", errdefs.ErrInvalidArgument)
	}
	for _, p := range req.Port {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port %d: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	sb, err := s.sandboxes.Get(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	if !sb.Ready() {
		return nil, fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	if s.streams == nil {
		return nil, fmt.Errorf("the streaming server is not running: %w", errdefs.ErrUnavailable)
	}
	r := proto.Clone(req).(*runtimeapi.PortForwardRequest)
	r.PodSandboxId = sb.ID
	return s.streams.GetPortForward(r)
}

// validateStreams applies the CRI's rules for exec and attach: at least
// one stream, and no separate stderr with a TTY (a terminal has one
// output).
func validateStreams(stdin, stdout, stderr, tty bool) error {
	if !stdin && !stdout && !stderr {
		return fmt.Errorf("one of stdin, stdout and stderr must be set: %w", errdefs.ErrInvalidArgument)
	}
	if tty && stderr {
		return fmt.Errorf("tty and stderr cannot both be set: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// runningContainer resolves id (or a unique prefix) to a running
// container's full id.
func (s *Server) runningContainer(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("no container id: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.containers.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if runtime.StateOf(c) != runtime.Running {
		return "", fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if s.streams == nil {
		return "", fmt.Errorf("the streaming server is not running: %w", errdefs.ErrUnavailable)
	}
	return c.ID, nil
}
