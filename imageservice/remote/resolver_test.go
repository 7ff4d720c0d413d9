package remote

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// These tests only compute endpoints; nothing is sent anywhere.

func mustParse(t *testing.T, s string) reference.Ref {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// epView is the comparable part of an Endpoint.
type epView struct {
	Ref    string
	Scheme string
	Mirror bool
	Host   string
}

func view(eps []Endpoint) []epView {
	var out []epView
	for _, ep := range eps {
		out = append(out, epView{
			Ref:    ep.Ref.String(),
			Scheme: ep.Ref.Context().Registry.Scheme(),
			Mirror: ep.Mirror,
			Host:   ep.Host,
		})
	}
	return out
}

func TestEndpoints(t *testing.T) {
	const dgst = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
	r, err := NewResolver(Config{
		Mirrors: map[string][]string{
			"docker.io":       {"http://127.0.0.1:5055", "https://mirror.example:443/"},
			"registry.k8s.io": {"http://127.0.0.1:5056"},
		},
		Insecure: []string{"insecure.example", "10.1.0.0/16"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		ref  string
		want []epView
	}{
		{"busybox", []epView{
			{"127.0.0.1:5055/library/busybox:latest", "http", true, "127.0.0.1:5055"},
			{"mirror.example:443/library/busybox:latest", "https", true, "mirror.example:443"},
			{"index.docker.io/library/busybox:latest", "https", false, "docker.io"},
		}},
		{"foo/bar@" + dgst, []epView{
			{"127.0.0.1:5055/foo/bar@" + dgst, "http", true, "127.0.0.1:5055"},
			{"mirror.example:443/foo/bar@" + dgst, "https", true, "mirror.example:443"},
			{"index.docker.io/foo/bar@" + dgst, "https", false, "docker.io"},
		}},
		{"registry.k8s.io/pause:3.10", []epView{
			{"127.0.0.1:5056/pause:3.10", "http", true, "127.0.0.1:5056"},
			{"registry.k8s.io/pause:3.10", "https", false, "registry.k8s.io"},
		}},
		{"quay.io/a/b:1@" + dgst, []epView{ // pulled by digest when both are given
			{"quay.io/a/b@" + dgst, "https", false, "quay.io"},
		}},
		{"insecure.example:5000/x", []epView{
			{"insecure.example:5000/x:latest", "http", false, "insecure.example:5000"},
		}},
		{"10.1.2.3:5000/x", []epView{
			{"10.1.2.3:5000/x:latest", "http", false, "10.1.2.3:5000"},
		}},
		{"localhost:5000/x", []epView{
			{"localhost:5000/x:latest", "http", false, "localhost:5000"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			eps, err := r.Endpoints(mustParse(t, tc.ref), nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, view(eps)); diff != "" {
				t.Errorf("Endpoints(%s) (-want +got):\n%s", tc.ref, diff)
			}
			for _, ep := range eps {
				if len(ep.Options) == 0 || cap(ep.Options) != len(ep.Options) {
					t.Errorf("endpoint %s options: len %d cap %d, want some, clipped", ep.Host, len(ep.Options), cap(ep.Options))
				}
			}
		})
	}
}

func TestEndpointsZeroRef(t *testing.T) {
	r, err := NewResolver(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Endpoints(reference.Ref{}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Endpoints(zero) error = %v, want ErrInvalidArgument", err)
	}
}

func TestMirrorKeyAliases(t *testing.T) {
	r, err := NewResolver(Config{Mirrors: map[string][]string{"Index.Docker.io": {"http://127.0.0.1:5055"}}})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := r.Endpoints(mustParse(t, "busybox"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || !eps[0].Mirror || eps[0].Host != "127.0.0.1:5055" {
		t.Errorf("Endpoints(busybox) = %+v, want the mirror first", view(eps))
	}
}

func TestNewResolverInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no scheme", Config{Mirrors: map[string][]string{"docker.io": {"127.0.0.1:5055"}}}},
		{"bad scheme", Config{Mirrors: map[string][]string{"docker.io": {"ftp://127.0.0.1:5055"}}}},
		{"path", Config{Mirrors: map[string][]string{"docker.io": {"https://mirror.example/v2/"}}}},
		{"query", Config{Mirrors: map[string][]string{"docker.io": {"https://mirror.example?x=1"}}}},
		{"user", Config{Mirrors: map[string][]string{"docker.io": {"https://u:p@mirror.example"}}}},
		{"no host", Config{Mirrors: map[string][]string{"docker.io": {"https://"}}}},
		{"bad port", Config{Mirrors: map[string][]string{"docker.io": {"https://mirror.example:x"}}}},
		{"unparsable", Config{Mirrors: map[string][]string{"docker.io": {"http://[::1"}}}},
		{"bad key", Config{Mirrors: map[string][]string{"https://docker.io": {"https://mirror.example"}}}},
		{"empty key", Config{Mirrors: map[string][]string{"": {"https://mirror.example"}}}},
		{"duplicate key", Config{Mirrors: map[string][]string{
			"docker.io": {"https://a.example"}, "index.docker.io": {"https://b.example"},
		}}},
		{"bad insecure", Config{Insecure: []string{"http://insecure.example"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Validate() = %v, want ErrInvalidArgument", err)
			}
			if _, err := NewResolver(tc.cfg); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("NewResolver() error = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestInsecureSet(t *testing.T) {
	s, err := parseInsecure([]string{"a.example", "b.example:5000", "10.0.0.0/8", "[fd00::1]:5000"})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"a.example":        true,
		"a.example:443":    true,
		"A.Example:443":    true,
		"b.example:5000":   true,
		"b.example":        false,
		"b.example:5001":   false,
		"10.2.3.4":         true,
		"10.2.3.4:5000":    true,
		"11.2.3.4:5000":    false,
		"[fd00::1]:5000":   true,
		"[fd00::1]:5001":   false,
		"c.example":        false,
		"127.0.0.1:5000":   false,
		"localhost:5000":   false,
		"a.example.evil:1": false,
	} {
		if got := s.contains(host); got != want {
			t.Errorf("contains(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:5000": true, "127.0.0.1": true, "127.1.2.3:80": true,
		"[::1]:5000": true, "::1": true, "localhost.example": false, "10.0.0.1:5000": false,
		"docker.io": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestDockerConfigPath(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", "/d")
	t.Setenv("HOME", "/h")
	if got := dockerConfigPath("/x/c.json"); got != "/x/c.json" {
		t.Errorf("explicit path: got %q", got)
	}
	if got := dockerConfigPath(""); got != "/d/config.json" {
		t.Errorf("DOCKER_CONFIG: got %q", got)
	}
	t.Setenv("DOCKER_CONFIG", "")
	if got := dockerConfigPath(""); got != "/h/.docker/config.json" {
		t.Errorf("HOME: got %q", got)
	}
	t.Setenv("HOME", "")
	if got := dockerConfigPath(""); got != "" {
		t.Errorf("nothing set: got %q", got)
	}
}

func TestLookupDockerConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	// alice:secret, bob:hunter2, carol:pw
	const cfg = `{"auths": {
		"https://index.docker.io/v1/": {"auth": "YWxpY2U6c2VjcmV0"},
		"http://legacy.example:5000/v1/": {"auth": "Ym9iOmh1bnRlcjI="},
		"token.example": {"identitytoken": "tok"},
		"plain.example": {"username": "carol", "password": "pw"}
	}}`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want authn.AuthConfig
	}{
		{"docker.io", authn.AuthConfig{Username: "alice", Password: "secret"}},
		{"legacy.example:5000", authn.AuthConfig{Username: "bob", Password: "hunter2"}},
		{"token.example", authn.AuthConfig{IdentityToken: "tok"}},
		{"plain.example", authn.AuthConfig{Username: "carol", Password: "pw"}},
		{"other.example", authn.AuthConfig{}},
	}
	for _, tc := range tests {
		got, err := lookupDockerConfig(path, tc.host)
		if err != nil {
			t.Fatalf("lookup %s: %v", tc.host, err)
		}
		if diff := cmp.Diff(tc.want, *got); diff != "" {
			t.Errorf("lookup %s (-want +got):\n%s", tc.host, diff)
		}
	}

	if got, err := lookupDockerConfig(filepath.Join(dir, "missing.json"), "docker.io"); err != nil || *got != (authn.AuthConfig{}) {
		t.Errorf("missing file: got %+v, %v; want no credentials", got, err)
	}
	if got, err := lookupDockerConfig("", "docker.io"); err != nil || *got != (authn.AuthConfig{}) {
		t.Errorf("no path: got %+v, %v; want no credentials", got, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := lookupDockerConfig(bad, "docker.io"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("malformed file: error %v, want ErrFailedPrecondition", err)
	}
}
