package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Login checks auth against a registry (docker login, POST /auth): the
// registry's /v2/ must answer 200 once the credentials are presented, as
// its challenge asks (basic or token). server is a host[:port] or a URL
// ("https://index.docker.io/v1/"); empty means Docker Hub. Refused
// credentials wrap errdefs.ErrUnauthenticated, an unreachable registry
// errdefs.ErrUnavailable.
func (r *Resolver) Login(ctx context.Context, server string, auth Auth) error {
	host := server
	for _, p := range []string{"https://", "http://"} {
		host = strings.TrimPrefix(host, p)
	}
	host, _, _ = strings.Cut(host, "/")
	if host == "" {
		host = reference.DefaultDomain
	}
	host = canonicalHost(host)
	regHost := host
	if host == reference.DefaultDomain {
		regHost = name.DefaultRegistry
	}
	var opts []name.Option
	insecure := r.insecure.contains(host)
	if insecure || isLoopback(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(regHost, opts...)
	if err != nil {
		return fmt.Errorf("registry %q: %v: %w", server, err, errdefs.ErrInvalidArgument)
	}
	tr := r.verify
	if insecure {
		tr = r.skipVerify
	}
	rt, err := transport.NewWithContext(ctx, reg, auth.authenticator(), tr, nil)
	if err != nil {
		return loginError(err, host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(err, host)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return errdefs.Message(errdefs.ErrUnauthenticated, "login attempt to %s failed with status: %s", req.URL, resp.Status)
	}
	return errdefs.Message(errdefs.ErrUnavailable, "login attempt to %s failed with status: %s", req.URL, resp.Status)
}

func loginError(err error, host string) error {
	kind, hint := classify(err, host)
	if kind == errdefs.ErrUnauthenticated {
		return errdefs.Message(errdefs.ErrUnauthenticated, "login to %s failed: unauthorized: incorrect username or password", host)
	}
	if kind == nil {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	return fmt.Errorf("login to %s: %s: %w", host, hint, kind)
}
