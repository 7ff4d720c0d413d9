package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToGRPC(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("image x: %w", ErrNotFound), codes.NotFound},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrInvalidArgument)), codes.InvalidArgument},
		{errors.Join(errors.New("x"), ErrUnauthenticated), codes.Unauthenticated},
		{ErrAlreadyExists, codes.AlreadyExists},
		{fmt.Errorf("image x is in use: %w", ErrConflict), codes.FailedPrecondition},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{status.Error(codes.Aborted, "kept"), codes.Aborted},
		{errors.New("plain"), codes.Unknown},
	} {
		got := ToGRPC(tc.err)
		if status.Code(got) != tc.code {
			t.Errorf("ToGRPC(%v) = %v, want %v", tc.err, status.Code(got), tc.code)
		}
		if s, _ := status.FromError(got); s.Message() != tc.err.Error() && tc.code != codes.Aborted {
			t.Errorf("message %q lost", tc.err)
		}
	}
	if ToGRPC(nil) != nil {
		t.Error("ToGRPC(nil) != nil")
	}
}
