package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Auth is the credential a pull request carries (the CRI's AuthConfig, or the
// docker API's X-Registry-Auth). The zero Auth means "none given".
type Auth struct {
	Username string
	Password string
	// Auth is base64("user:password"), as in a docker config.json.
	Auth string
	// IdentityToken is exchanged for a registry token (OAuth2 refresh token).
	IdentityToken string
	// RegistryToken is sent as-is as a bearer token.
	RegistryToken string
}

// IsZero reports whether a carries no credential.
func (a *Auth) IsZero() bool { return a == nil || *a == Auth{} }

func (a *Auth) authenticator() authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// dockerConfigAuth is an authn.Authenticator that looks up host in a docker
// config.json the first time the registry asks for credentials. A registry
// that serves anonymous pulls never triggers the lookup, so a broken
// credential helper only matters for the registries that need it. The result
// is kept for the life of the authenticator (one pull), because the basic
// auth transport asks again on every request.
type dockerConfigAuth struct {
	path string // "" = no docker config
	host string

	once sync.Once
	cfg  *authn.AuthConfig
	err  error
}

var _ authn.Authenticator = (*dockerConfigAuth)(nil)

// Authorization implements authn.Authenticator.
func (a *dockerConfigAuth) Authorization() (*authn.AuthConfig, error) {
	a.once.Do(func() { a.cfg, a.err = lookupDockerConfig(a.path, a.host) })
	return a.cfg, a.err
}

// lookupDockerConfig returns the credentials for host in the docker config at
// path; no file, or no entry, is the empty AuthConfig (anonymous). The key
// is matched as docker does: "docker.io" means "https://index.docker.io/v1/",
// and legacy URL keys ("https://host/v1/") match their host.
func lookupDockerConfig(path, host string) (*authn.AuthConfig, error) {
	if path == "" {
		return &authn.AuthConfig{}, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &authn.AuthConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading credentials for %s: %w (%w)", host, err, errdefs.ErrFailedPrecondition)
	}
	defer f.Close()
	cf := configfile.New(path)
	if err := cf.LoadFromReader(f); err != nil {
		return nil, fmt.Errorf("reading credentials for %s from %s: %w (%w)", host, path, err, errdefs.ErrFailedPrecondition)
	}
	ac, err := cf.GetAuthConfig(host)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s from the helper configured in %s: %w (%w)", host, path, err, errdefs.ErrFailedPrecondition)
	}
	return &authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}, nil
}
