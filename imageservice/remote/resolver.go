// Package remote decides where and how an image reference is fetched: the
// mirrors to try before the registry, the transport (plain HTTP, verified or
// unverified TLS) and the credentials for each, as go-containerregistry
// inputs. It also turns registry and network errors into errdefs sentinels
// with messages a user or the kubelet can act on (Classify) and says when a
// failed endpoint should give way to the next one (Retryable, Try).
//
// go-containerregistry calls Docker Hub "index.docker.io"; that name stays in
// Endpoint.Ref. Users see imageservice/reference names and Endpoint.Host.
package remote

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// mirrorBackoff replaces go-containerregistry's 1s+3s retry of temporary
// failures (5xx, 429, resets) on mirrors: a struggling mirror should give
// way to the next endpoint quickly.
var mirrorBackoff = ggcrremote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}

// Endpoint is one place to fetch a reference from.
type Endpoint struct {
	// Ref is the reference at this endpoint: the mirror's or the registry's
	// host with the same repository path and tag or digest (by digest when
	// the reference has one).
	Ref name.Reference
	// Options carry the transport and the credentials for this endpoint;
	// the caller adds remote.WithContext (and platform, progress, ...).
	Options []ggcrremote.Option
	// Mirror is true for a mirror, false for the registry itself.
	Mirror bool
	// Host is the host:port fetched from, for logs and messages:
	// "127.0.0.1:5055", "registry.k8s.io"; "docker.io" for Docker Hub.
	Host string
}

// Resolver turns references into endpoints. It is safe for concurrent use;
// its transports are shared by all the endpoints it makes.
type Resolver struct {
	mirrors    map[string][]mirror
	insecure   insecureSet
	configPath string
	userAgent  string

	verify     *http.Transport
	skipVerify *http.Transport
}

// NewResolver validates cfg (errors wrap errdefs.ErrInvalidArgument) and
// returns a Resolver for it.
func NewResolver(cfg Config) (*Resolver, error) {
	mirrors, err := parseMirrors(cfg.Mirrors)
	if err != nil {
		return nil, err
	}
	insecure, err := parseInsecure(cfg.Insecure)
	if err != nil {
		return nil, err
	}
	return &Resolver{
		mirrors:    mirrors,
		insecure:   insecure,
		configPath: dockerConfigPath(cfg.DockerConfig),
		userAgent:  cfg.UserAgent,
		verify:     newTransport(false),
		skipVerify: newTransport(true),
	}, nil
}

// Close drops the idle connections of the resolver's transports.
func (r *Resolver) Close() {
	r.verify.CloseIdleConnections()
	r.skipVerify.CloseIdleConnections()
}

// Endpoints lists, in order, the endpoints to try for ref: its registry's
// mirrors as configured, then the registry itself (Docker Hub as
// go-containerregistry's name.DefaultRegistry).
//
// Credentials: the registry gets auth when it is given (the kubelet or the
// docker client chose it for this image), else the docker config's entry for
// the registry host. A mirror always gets the docker config's entry for the
// mirror's own host: credentials meant for the registry are not handed to a
// third party.
func (r *Resolver) Endpoints(ref reference.Ref, auth *Auth) ([]Endpoint, error) {
	if ref.IsZero() {
		return nil, fmt.Errorf("resolving an empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	host := canonicalHost(ref.Domain())
	mirrors := r.mirrors[host]
	eps := make([]Endpoint, 0, len(mirrors)+1)
	for _, m := range mirrors {
		ep, err := r.endpoint(ref, endpointSpec{
			host: m.host,
			// The scheme was given: an https:// mirror is not told it may
			// use plain HTTP, but an insecure host's certificate is not
			// verified.
			plainHTTP:  m.plainHTTP,
			skipVerify: r.insecure.contains(m.host),
			mirror:     true,
		}, nil)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}

	registry := ref.Domain()
	if host == reference.DefaultDomain {
		registry = name.DefaultRegistry
	}
	insecure := r.insecure.contains(host)
	ep, err := r.endpoint(ref, endpointSpec{
		host:       registry,
		logHost:    ref.Domain(),
		plainHTTP:  insecure || isLoopback(host),
		skipVerify: insecure,
	}, auth)
	if err != nil {
		return nil, err
	}
	return append(eps, ep), nil
}

type endpointSpec struct {
	host       string // registry host:port as go-containerregistry names it
	logHost    string // Endpoint.Host; host when empty
	plainHTTP  bool   // go-containerregistry may fall back to http://
	skipVerify bool
	mirror     bool
}

func (r *Resolver) endpoint(ref reference.Ref, spec endpointSpec, auth *Auth) (Endpoint, error) {
	var nameOpts []name.Option
	if spec.plainHTTP {
		// go-containerregistry then tries https first and falls back to http.
		nameOpts = append(nameOpts, name.Insecure)
	}
	reg, err := name.NewRegistry(spec.host, nameOpts...)
	if err != nil {
		return Endpoint{}, fmt.Errorf("registry %q of %s: %w (%w)", spec.host, ref, err, errdefs.ErrInvalidArgument)
	}
	repo := reg.Repo(ref.Path())
	var nref name.Reference = repo.Tag(ref.Tag())
	if d := ref.Digest(); d != "" {
		nref = repo.Digest(d.String())
	}

	logHost := spec.logHost
	if logHost == "" {
		logHost = spec.host
	}
	var authr authn.Authenticator
	if !spec.mirror && !auth.IsZero() {
		authr = auth.authenticator()
	} else {
		authr = &dockerConfigAuth{path: r.configPath, host: canonicalHost(logHost)}
	}

	tr := r.verify
	if spec.skipVerify {
		tr = r.skipVerify
	}
	opts := []ggcrremote.Option{ggcrremote.WithTransport(tr), ggcrremote.WithAuth(authr)}
	if r.userAgent != "" {
		opts = append(opts, ggcrremote.WithUserAgent(r.userAgent))
	}
	if spec.mirror {
		opts = append(opts, ggcrremote.WithRetryBackoff(mirrorBackoff))
	}
	// Clipped, so that callers appending their own options to the same
	// Endpoint concurrently never share a backing array.
	return Endpoint{Ref: nref, Options: slices.Clip(opts), Mirror: spec.mirror, Host: logHost}, nil
}
