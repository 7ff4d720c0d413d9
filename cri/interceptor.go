package cri

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idgen"
	berthlog "github.com/berth-runtime/berth/internal/log"
)

// quietRPCs are polled continuously by the kubelet; they log at debug.
var quietRPCs = map[string]bool{
	"Version": true, "Status": true, "ListImages": true, "ImageStatus": true, "ImageFsInfo": true,
	"ListPodSandbox": true, "ListContainers": true, "ContainerStatus": true, "PodSandboxStatus": true,
	"ListContainerStats": true, "ListPodSandboxStats": true, "RuntimeConfig": true,
}

// UnaryInterceptor gives every RPC a request id and a logger in its
// context, logs it once with its duration and outcome, and maps service
// errors to gRPC codes — the one place where that happens.
func UnaryInterceptor(base *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		rpc := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
		l := base.With("rpc", rpc, "req", idgen.Hex(6))
		ctx = berthlog.With(ctx, l)
		start := time.Now()
		resp, err := handler(ctx, req)
		err = errdefs.ToGRPC(err)
		logResult(ctx, l, rpc, start, err)
		return resp, err
	}
}

// StreamInterceptor does for streaming RPCs what UnaryInterceptor does.
func StreamInterceptor(base *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		rpc := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
		l := base.With("rpc", rpc, "req", idgen.Hex(6))
		ctx := berthlog.With(ss.Context(), l)
		start := time.Now()
		err := errdefs.ToGRPC(handler(srv, &ctxStream{ServerStream: ss, ctx: ctx}))
		logResult(ctx, l, rpc, start, err)
		return err
	}
}

func logResult(ctx context.Context, l *slog.Logger, rpc string, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	switch {
	case err == nil && quietRPCs[rpc]:
		l.Debug("ok", "duration", d)
	case err == nil:
		l.Info("ok", "duration", d)
	case code == codes.NotFound || code == codes.Unimplemented || code == codes.Canceled:
		l.Debug("failed", "duration", d, "code", code, "error", status.Convert(err).Message())
	default:
		l.Warn("failed", "duration", d, "code", code, "error", status.Convert(err).Message())
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
