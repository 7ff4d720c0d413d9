// Package errdefs holds berth's sentinel errors and their one mapping to
// gRPC status codes. Services wrap a sentinel with context
// (fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)); the CRI server maps
// the wrapped error to a code with ToGRPC, so a known condition never reaches
// the client as Unknown. The Engine API's mapping to HTTP statuses is to
// live here too; a sentinel's doc names the status it is meant to get
// where that is not the obvious one.
package errdefs

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinels. Match them with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
	ErrDataLoss           = errors.New("data loss")

	// ErrConflict is an operation refused because of what else holds the
	// object (an image containers were made from, a network with
	// endpoints) and that the caller may force: docker's "conflict",
	// HTTP 409. gRPC has no such code; the CRI gets FailedPrecondition.
	ErrConflict = errors.New("conflict")

	// ErrNotModified is a request that asks for what already is (start a
	// running container, stop a stopped one): docker's HTTP 304.
	ErrNotModified = errors.New("not modified")
)

// ToGRPC turns err into a gRPC status error with the code its sentinel
// implies. Errors that already carry a gRPC status keep it.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}

// Code is the gRPC code for err.
func Code(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, ErrNotFound):
		return codes.NotFound
	case errors.Is(err, ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, ErrInvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, ErrFailedPrecondition), errors.Is(err, ErrConflict), errors.Is(err, ErrNotModified):
		return codes.FailedPrecondition
	case errors.Is(err, ErrUnauthenticated):
		return codes.Unauthenticated
	case errors.Is(err, ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, ErrUnavailable):
		return codes.Unavailable
	case errors.Is(err, ErrNotImplemented):
		return codes.Unimplemented
	case errors.Is(err, ErrDataLoss):
		return codes.DataLoss
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// IsNotFound reports whether err wraps ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// HTTPStatus is the Engine API's status for err, as docker gives it: 404
// for not found, 409 for conflicts and names in use, 400 for bad input,
// 304 for what already is, 500 for the unknown.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrConflict), errors.Is(err, ErrFailedPrecondition):
		return http.StatusConflict
	case errors.Is(err, ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrPermissionDenied):
		return http.StatusForbidden
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusRequestTimeout
	}
	return http.StatusInternalServerError
}
