package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func httpErr(status int, codes ...transport.ErrorCode) error {
	e := &transport.Error{StatusCode: status}
	for _, c := range codes {
		e.Errors = append(e.Errors, transport.Diagnostic{Code: c, Message: strings.ToLower(string(c))})
	}
	return fmt.Errorf("fetching manifest: %w", e)
}

func TestClassify(t *testing.T) {
	withBasic := &transport.Error{StatusCode: 401, Request: &http.Request{Header: http.Header{"Authorization": {"Basic eDp5"}}}}
	withBearer := &transport.Error{StatusCode: 401, Request: &http.Request{Header: http.Header{"Authorization": {"Bearer t"}}}}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name     string
		err      error
		want     error // nil: no sentinel
		wantText string
	}{
		{"401", httpErr(401), errdefs.ErrUnauthenticated, "authentication required"},
		{"UNAUTHORIZED", httpErr(400, transport.UnauthorizedErrorCode), errdefs.ErrUnauthenticated, "authentication required"},
		{"401 with basic auth", withBasic, errdefs.ErrUnauthenticated, "authentication failed"},
		{"401 with a bearer token", withBearer, errdefs.ErrUnauthenticated, "authentication required"},
		{"403", httpErr(403), errdefs.ErrUnauthenticated, "access denied"},
		{"DENIED", httpErr(400, transport.DeniedErrorCode), errdefs.ErrUnauthenticated, "access denied"},
		{"404", httpErr(404), errdefs.ErrNotFound, "not found"},
		{"MANIFEST_UNKNOWN", httpErr(404, transport.ManifestUnknownErrorCode), errdefs.ErrNotFound, "image not found"},
		{"NAME_UNKNOWN", httpErr(404, transport.NameUnknownErrorCode), errdefs.ErrNotFound, "repository not found"},
		{"BLOB_UNKNOWN", httpErr(404, transport.BlobUnknownErrorCode), errdefs.ErrNotFound, "blob not found"},
		{"429", httpErr(429, transport.TooManyRequestsErrorCode), errdefs.ErrUnavailable, "rate limited"},
		{"503", httpErr(503), errdefs.ErrUnavailable, "HTTP 503"},
		{"TAG_INVALID", httpErr(400, transport.TagInvalidErrorCode), errdefs.ErrInvalidArgument, "rejected"},
		{"418", httpErr(418), nil, "418"},
		{"refused", fmt.Errorf("Get: %w", dial), errdefs.ErrUnavailable, "connection refused"},
		{"dns", &net.DNSError{Err: "no such host", Name: "r.example", IsNotFound: true}, errdefs.ErrUnavailable, "cannot resolve"},
		{"timeout", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, errdefs.ErrUnavailable, "timed out"},
		{"unknown CA", fmt.Errorf("Get: %w", x509.UnknownAuthorityError{}), errdefs.ErrUnavailable, "insecure registries"},
		{"reset", syscall.ECONNRESET, errdefs.ErrUnavailable, "reset"},
		{"already classified", fmt.Errorf("helper: %w", errdefs.ErrFailedPrecondition), errdefs.ErrFailedPrecondition, "helper"},
		{"canceled", fmt.Errorf("Get: %w", context.Canceled), context.Canceled, "canceled"},
		{"other", errors.New("something odd"), nil, "something odd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.err, "docker.io/library/x:1", "r.example")
			if !errors.Is(got, tc.err) {
				t.Errorf("Classify lost the original error: %v", got)
			}
			if tc.want != nil && !errors.Is(got, tc.want) {
				t.Errorf("Classify = %v, want it to wrap %v", got, tc.want)
			}
			if tc.want == nil {
				for _, s := range berthSentinels {
					if errors.Is(got, s) {
						t.Errorf("Classify = %v, wraps %v, want no sentinel", got, s)
					}
				}
			}
			msg := got.Error()
			if !strings.HasPrefix(msg, "pulling docker.io/library/x:1 from r.example: ") || !strings.Contains(msg, tc.wantText) {
				t.Errorf("Classify message %q, want the ref, the host and %q", msg, tc.wantText)
			}
		})
	}
	if Classify(nil, "x", "y") != nil {
		t.Error("Classify(nil) != nil")
	}
}

func TestRetryable(t *testing.T) {
	mirror := Endpoint{Mirror: true, Host: "m.example"}
	registry := Endpoint{Host: "r.example"}
	refused := &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		ep   Endpoint
		want bool
	}{
		{"nil", nil, mirror, false},
		{"mirror not found", httpErr(404), mirror, true},
		{"mirror unauthorized", httpErr(401), mirror, true},
		{"mirror refused", refused, mirror, true},
		{"mirror odd", errors.New("odd"), mirror, true},
		{"mirror canceled", context.Canceled, mirror, false},
		{"mirror deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), mirror, false},
		{"mirror bad image", fmt.Errorf("layer: %w", errdefs.ErrInvalidArgument), mirror, false},
		{"mirror TAG_INVALID", httpErr(400, transport.TagInvalidErrorCode), mirror, false},
		{"mirror TAG_INVALID, classified", Classify(httpErr(400, transport.TagInvalidErrorCode), "x", "m.example"), mirror, false},
		{"registry unauthorized", httpErr(401), registry, false},
		{"registry not found", httpErr(404), registry, false},
		{"registry refused", refused, registry, true},
		{"registry refused, classified", Classify(refused, "x", "r.example"), registry, true},
		{"registry 503", httpErr(503), registry, true},
		{"registry odd", errors.New("odd"), registry, false},
	}
	for _, tc := range tests {
		if got := Retryable(tc.err, tc.ep); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTry(t *testing.T) {
	eps := []Endpoint{{Mirror: true, Host: "m1"}, {Mirror: true, Host: "m2"}, {Host: "reg"}}
	errsBy := func(m map[string]error) func(context.Context, Endpoint) (string, error) {
		return func(_ context.Context, ep Endpoint) (string, error) {
			if err, ok := m[ep.Host]; ok {
				return "", err
			}
			return "image from " + ep.Host, nil
		}
	}

	t.Run("first mirror", func(t *testing.T) {
		v, ep, err := Try(context.Background(), eps, "x", errsBy(nil))
		if err != nil || v != "image from m1" || ep.Host != "m1" {
			t.Errorf("Try = %q, %s, %v", v, ep.Host, err)
		}
	})
	t.Run("falls back", func(t *testing.T) {
		v, ep, err := Try(context.Background(), eps, "x", errsBy(map[string]error{"m1": httpErr(404), "m2": httpErr(503)}))
		if err != nil || ep.Host != "reg" || v != "image from reg" {
			t.Errorf("Try = %q, %s, %v", v, ep.Host, err)
		}
	})
	t.Run("registry's answer wins", func(t *testing.T) {
		_, ep, err := Try(context.Background(), eps, "x", errsBy(map[string]error{"m1": httpErr(503), "m2": httpErr(401), "reg": httpErr(404)}))
		if !errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrUnauthenticated) {
			t.Errorf("Try error %v: want the registry's ErrNotFound only", err)
		}
		if ep.Host != "reg" || !strings.Contains(err.Error(), "from m1") || !strings.Contains(err.Error(), "from m2") {
			t.Errorf("Try = %s, %q: want the registry, mentioning the mirrors", ep.Host, err)
		}
	})
	t.Run("all unavailable", func(t *testing.T) {
		_, ep, err := Try(context.Background(), eps, "x", errsBy(map[string]error{"m1": httpErr(503), "m2": httpErr(503), "reg": httpErr(502)}))
		if !errors.Is(err, errdefs.ErrUnavailable) || ep.Host != "reg" || !strings.Contains(err.Error(), "HTTP 502") {
			t.Errorf("Try = %s, %v", ep.Host, err)
		}
	})
	t.Run("bad image at a mirror is final", func(t *testing.T) {
		calls := 0
		_, ep, err := Try(context.Background(), eps, "x", func(context.Context, Endpoint) (string, error) {
			calls++
			return "", fmt.Errorf("layer: %w", errdefs.ErrInvalidArgument)
		})
		if calls != 1 || ep.Host != "m1" || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Try = %s after %d calls, %v; want m1's ErrInvalidArgument after 1 call", ep.Host, calls, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, _, err := Try(ctx, eps, "x", func(context.Context, Endpoint) (string, error) {
			calls++
			cancel()
			return "", httpErr(503)
		})
		if calls != 1 || err == nil {
			t.Errorf("Try after cancel: %d calls, %v; want 1 call and an error", calls, err)
		}
	})
	t.Run("no endpoints", func(t *testing.T) {
		if _, _, err := Try(context.Background(), nil, "x", errsBy(nil)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Try(no endpoints) = %v", err)
		}
	})
}
