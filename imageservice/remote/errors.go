package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Classify turns an error from fetching ref at host (an Endpoint.Host) into
// an error that wraps both the errdefs sentinel for its cause and err itself,
// with a message a user or the kubelet can act on:
//
//	401, UNAUTHORIZED, 403, DENIED       → errdefs.ErrUnauthenticated
//	404, MANIFEST_UNKNOWN, NAME_UNKNOWN  → errdefs.ErrNotFound
//	429, 5xx, refused, DNS, timeouts, TLS → errdefs.ErrUnavailable
//	400 NAME/TAG/DIGEST/MANIFEST_INVALID → errdefs.ErrInvalidArgument
//
// Context cancellation and deadlines, and errors that already wrap a berth
// sentinel, only gain the "pulling ref from host" context. Anything else is
// returned with that context and no sentinel. Classify(nil, ...) is nil.
func Classify(err error, ref string, host string) error {
	if err == nil {
		return nil
	}
	kind, hint := classify(err, host)
	if kind == nil {
		return fmt.Errorf("pulling %s from %s: %w", ref, host, err)
	}
	return fmt.Errorf("pulling %s from %s: %s (%w): %w", ref, host, hint, kind, err)
}

// Retryable reports whether, after err from ep, the next endpoint should be
// tried. A mirror gives way on any failure but one: it may lack the image,
// refuse the credentials or be down, and the registry still decides. A bad
// image or reference (errdefs.ErrInvalidArgument: an unsupported manifest, a
// hostile layer, a name the registry rejects) would be as bad anywhere. The
// registry itself gives way only when it is unavailable; its "authentication
// failed" or "not found" is the answer. A cancelled or expired context is
// final everywhere. err may be raw or already Classify'd.
func Retryable(err error, ep Endpoint) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	kind, _ := classify(err, ep.Host)
	switch {
	case errors.Is(err, errdefs.ErrInvalidArgument), kind == errdefs.ErrInvalidArgument:
		return false
	case ep.Mirror:
		return true
	}
	return errors.Is(err, errdefs.ErrUnavailable) || kind == errdefs.ErrUnavailable
}

// Try calls fetch with each endpoint in order until one succeeds or a failure
// is final (see Retryable), and returns the result with the endpoint that
// gave it. A failure is returned Classify'd for the endpoint that failed
// last, so its sentinel is the authoritative one; the failures of the
// endpoints it fell back from are added to the message only. ref names the
// image in messages.
func Try[T any](ctx context.Context, eps []Endpoint, ref string, fetch func(context.Context, Endpoint) (T, error)) (T, Endpoint, error) {
	var zero T
	if len(eps) == 0 {
		return zero, Endpoint{}, fmt.Errorf("pulling %s: no endpoints: %w", ref, errdefs.ErrInvalidArgument)
	}
	var skipped []error
	for _, ep := range eps {
		v, err := fetch(ctx, ep)
		if err == nil {
			return v, ep, nil
		}
		err = Classify(err, ref, ep.Host)
		if !Retryable(err, ep) || ctx.Err() != nil {
			return zero, ep, withSkipped(err, skipped)
		}
		skipped = append(skipped, err)
	}
	// The registry comes last and is Retryable only when unavailable.
	last := len(skipped) - 1
	return zero, eps[last], withSkipped(skipped[last], skipped[:last])
}

// fallbackError is the final error of Try. It unwraps to the final error
// only, so errors.Is sees one sentinel.
type fallbackError struct {
	final   error
	skipped []error
}

func withSkipped(final error, skipped []error) error {
	if len(skipped) == 0 {
		return final
	}
	return &fallbackError{final: final, skipped: skipped}
}

func (e *fallbackError) Error() string {
	var b strings.Builder
	b.WriteString(e.final.Error())
	b.WriteString("; endpoints tried before: ")
	for i, err := range e.skipped {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *fallbackError) Unwrap() error { return e.final }

// berthSentinels are the errdefs sentinels an error may already carry
// (a credential helper failure, for example).
var berthSentinels = []error{
	errdefs.ErrNotFound, errdefs.ErrInvalidArgument, errdefs.ErrFailedPrecondition,
	errdefs.ErrUnauthenticated, errdefs.ErrPermissionDenied, errdefs.ErrUnavailable,
	errdefs.ErrNotImplemented, errdefs.ErrDataLoss,
}

// classify returns the sentinel and the user-facing reason for err, or a nil
// sentinel when err needs none.
func classify(err error, host string) (kind error, hint string) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, ""
	}
	for _, s := range berthSentinels {
		if errors.Is(err, s) {
			return nil, ""
		}
	}
	// A failed ping of a registry that may use plain HTTP carries both the
	// https and the http attempt's errors; an HTTP status without a meaning
	// here (the 400 of plain HTTP sent to a TLS port) gives way to the
	// network or TLS error next to it.
	var terr *transport.Error
	if errors.As(err, &terr) {
		if kind, hint := classifyHTTP(terr); kind != nil {
			return kind, hint
		}
	}
	return classifyNet(err, host)
}

func classifyHTTP(e *transport.Error) (error, string) {
	has := func(codes ...transport.ErrorCode) bool {
		for _, d := range e.Errors {
			for _, c := range codes {
				if d.Code == c {
					return true
				}
			}
		}
		return false
	}
	switch {
	case e.StatusCode == http.StatusUnauthorized || has(transport.UnauthorizedErrorCode):
		if sentBasicAuth(e.Request) {
			return errdefs.ErrUnauthenticated, "authentication failed: the credentials were rejected"
		}
		return errdefs.ErrUnauthenticated, "authentication required: the repository does not exist or needs credentials that allow pulling it"
	case e.StatusCode == http.StatusForbidden || has(transport.DeniedErrorCode):
		return errdefs.ErrUnauthenticated, "access denied"
	case has(transport.NameUnknownErrorCode):
		return errdefs.ErrNotFound, "repository not found"
	case has(transport.ManifestUnknownErrorCode):
		return errdefs.ErrNotFound, "image not found"
	case has(transport.BlobUnknownErrorCode):
		return errdefs.ErrNotFound, "blob not found"
	case e.StatusCode == http.StatusNotFound:
		return errdefs.ErrNotFound, "not found"
	case e.StatusCode == http.StatusTooManyRequests || has(transport.TooManyRequestsErrorCode):
		return errdefs.ErrUnavailable, "rate limited by the registry"
	case e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || has(transport.UnavailableErrorCode):
		return errdefs.ErrUnavailable, fmt.Sprintf("registry unavailable (HTTP %d)", e.StatusCode)
	case has(transport.NameInvalidErrorCode, transport.TagInvalidErrorCode, transport.DigestInvalidErrorCode, transport.ManifestInvalidErrorCode):
		return errdefs.ErrInvalidArgument, "the registry rejected the reference"
	}
	return nil, ""
}

// sentBasicAuth reports whether the failed request carried a username and
// password (directly, or to the token service). A bearer token may be an
// anonymous one, so it proves nothing.
func sentBasicAuth(req *http.Request) bool {
	return req != nil && strings.HasPrefix(req.Header.Get("Authorization"), "Basic ")
}

func classifyNet(err error, host string) (error, string) {
	var (
		dnsErr     *net.DNSError
		verifyErr  *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		netErr     net.Error
		opErr      *net.OpError
	)
	insecureHint := fmt.Sprintf("; list %s in the insecure registries if that is intended", host)
	switch {
	case errors.As(err, &dnsErr):
		return errdefs.ErrUnavailable, "cannot resolve the registry host"
	case errors.Is(err, syscall.ECONNREFUSED):
		return errdefs.ErrUnavailable, "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return errdefs.ErrUnavailable, "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return errdefs.ErrUnavailable, "registry host unreachable"
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return errdefs.ErrUnavailable, "TLS certificate not trusted" + insecureHint
	case errors.As(err, &recordErr):
		return errdefs.ErrUnavailable, "the registry does not speak TLS" + insecureHint
	case errors.As(err, &netErr) && netErr.Timeout():
		return errdefs.ErrUnavailable, "timed out"
	case errors.As(err, &opErr):
		return errdefs.ErrUnavailable, "network error"
	}
	return nil, ""
}
