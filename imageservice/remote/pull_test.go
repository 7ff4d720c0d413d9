package remote

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// All traffic in these tests goes to registries served by httptest on
// 127.0.0.1. Refs under docker.io are only ever answered by a mirror.

const (
	testUser = "alice"
	testPass = "s3cret"
)

// testRegistry is an in-process registry on 127.0.0.1.
type testRegistry struct {
	srv  *httptest.Server
	host string       // 127.0.0.1:port
	hits atomic.Int64 // requests served
}

type regOpts struct {
	basicAuth bool // require testUser/testPass
	tls       bool
}

func newRegistry(t *testing.T, o regOpts) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		if o.basicAuth {
			u, p, ok := req.BasicAuth()
			if !ok || u != testUser || p != testPass {
				w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		inner.ServeHTTP(w, req)
	})
	r.srv = httptest.NewUnstartedServer(h)
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are expected
	if o.tls {
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "http://"), "https://")
	return r
}

// push writes a random image to repo:tag of the registry and returns it.
func (r *testRegistry) push(t *testing.T, repoTag string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []ggcrremote.Option{
		ggcrremote.WithAuth(&authn.Basic{Username: testUser, Password: testPass}),
		ggcrremote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}), //nolint:gosec // test server
	}
	if err := ggcrremote.Write(ref, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	r.hits.Store(0)
	return img
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func newResolver(t *testing.T, cfg Config) *Resolver {
	t.Helper()
	if cfg.DockerConfig == "" {
		cfg.DockerConfig = filepath.Join(t.TempDir(), "none.json") // never the tester's own
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// pull fetches ref through the resolver's endpoints, reading every layer.
func pull(t *testing.T, r *Resolver, refStr string, auth *Auth) (v1.Image, Endpoint, error) {
	t.Helper()
	ref := mustParse(t, refStr)
	eps, err := r.Endpoints(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	return Try(context.Background(), eps, ref.String(), func(ctx context.Context, ep Endpoint) (v1.Image, error) {
		if !isLoopback(ep.Ref.Context().RegistryStr()) {
			t.Fatalf("the test would contact %s", ep.Ref)
		}
		img, err := ggcrremote.Image(ep.Ref, append(ep.Options, ggcrremote.WithContext(ctx))...)
		if err != nil {
			return nil, err
		}
		return img, validate.Image(img) // fetches config and layers, checks digests
	})
}

func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	gd, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := want.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gd != wd {
		t.Errorf("pulled %s, want %s", gd, wd)
	}
}

func TestPullFromMirror(t *testing.T) {
	m := newRegistry(t, regOpts{})
	want := m.push(t, "library/x:tag")
	r := newResolver(t, Config{Mirrors: map[string][]string{"docker.io": {"http://" + m.host}}})

	img, ep, err := pull(t, r, "docker.io/library/x:tag", nil)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, want)
	if !ep.Mirror || ep.Host != m.host {
		t.Errorf("served by %+v, want the mirror %s", ep, m.host)
	}
	if m.hits.Load() == 0 {
		t.Error("the mirror saw no requests")
	}
}

func TestPullFallsBackPastRefusingMirror(t *testing.T) {
	dead := closedAddr(t)
	m := newRegistry(t, regOpts{})
	want := m.push(t, "library/x:tag")
	r := newResolver(t, Config{Mirrors: map[string][]string{"docker.io": {"http://" + dead, "http://" + m.host}}})

	img, ep, err := pull(t, r, "x:tag", nil)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, want)
	if ep.Host != m.host {
		t.Errorf("served by %s, want the second mirror %s", ep.Host, m.host)
	}
}

func TestPullFallsBackToRegistry(t *testing.T) {
	up := newRegistry(t, regOpts{})
	want := up.push(t, "a/x:1")
	empty := newRegistry(t, regOpts{}) // a mirror without the image
	r := newResolver(t, Config{Mirrors: map[string][]string{up.host: {"http://" + closedAddr(t), "http://" + empty.host}}})

	img, ep, err := pull(t, r, up.host+"/a/x:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, want)
	if ep.Mirror || ep.Host != up.host {
		t.Errorf("served by %+v, want the registry", ep)
	}
}

func TestPullAllEndpointsFail(t *testing.T) {
	up := newRegistry(t, regOpts{})
	mirrorAddr := closedAddr(t)
	r := newResolver(t, Config{Mirrors: map[string][]string{up.host: {"http://" + mirrorAddr}}})

	_, ep, err := pull(t, r, up.host+"/a/x:1", nil)
	if !errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("error %v: want the registry's ErrNotFound only", err)
	}
	if ep.Mirror {
		t.Errorf("failed at %+v, want the registry", ep)
	}
	if !strings.Contains(err.Error(), mirrorAddr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not mention the refused mirror", err)
	}
}

func TestPullRegistryUnavailable(t *testing.T) {
	dead := closedAddr(t)
	r := newResolver(t, Config{})
	_, _, err := pull(t, r, dead+"/a/x:1", nil)
	if !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v: want ErrUnavailable wrapping ECONNREFUSED", err)
	}
}

func TestPullUnknownTag(t *testing.T) {
	up := newRegistry(t, regOpts{})
	up.push(t, "a/x:1")
	r := newResolver(t, Config{})
	_, _, err := pull(t, r, up.host+"/a/x:2", nil)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("error %v: want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Errorf("error %q lost the registry's message", err)
	}
}

func writeDockerConfig(t *testing.T, key, user, pass string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	enc := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	body := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, key, enc)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPullBasicAuth(t *testing.T) {
	up := newRegistry(t, regOpts{basicAuth: true})
	want := up.push(t, "private/x:1")
	ref := up.host + "/private/x:1"

	t.Run("request auth", func(t *testing.T) {
		r := newResolver(t, Config{})
		img, _, err := pull(t, r, ref, &Auth{Username: testUser, Password: testPass})
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, want)
	})
	t.Run("request auth as base64", func(t *testing.T) {
		r := newResolver(t, Config{})
		enc := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPass))
		img, _, err := pull(t, r, ref, &Auth{Auth: enc})
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, want)
	})
	t.Run("docker config", func(t *testing.T) {
		r := newResolver(t, Config{DockerConfig: writeDockerConfig(t, up.host, testUser, testPass)})
		img, _, err := pull(t, r, ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, want)
	})
	t.Run("docker config legacy key", func(t *testing.T) {
		r := newResolver(t, Config{DockerConfig: writeDockerConfig(t, "http://"+up.host+"/v1/", testUser, testPass)})
		if _, _, err := pull(t, r, ref, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("request auth wins over docker config", func(t *testing.T) {
		r := newResolver(t, Config{DockerConfig: writeDockerConfig(t, up.host, testUser, "wrong")})
		if _, _, err := pull(t, r, ref, &Auth{Username: testUser, Password: testPass}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		r := newResolver(t, Config{})
		_, _, err := pull(t, r, ref, &Auth{Username: testUser, Password: "wrong"})
		if !errors.Is(err, errdefs.ErrUnauthenticated) {
			t.Fatalf("error %v: want ErrUnauthenticated", err)
		}
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Errorf("error %v does not keep the registry's 401", err)
		}
		if !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), up.host) {
			t.Errorf("error %q: want an authentication failure naming %s", err, up.host)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		r := newResolver(t, Config{})
		_, _, err := pull(t, r, ref, nil)
		if !errors.Is(err, errdefs.ErrUnauthenticated) || !strings.Contains(err.Error(), "authentication required") {
			t.Fatalf("error %v: want ErrUnauthenticated, authentication required", err)
		}
	})
}

func TestMirrorCredentials(t *testing.T) {
	up := newRegistry(t, regOpts{})
	want := up.push(t, "a/x:1")
	m := newRegistry(t, regOpts{basicAuth: true})
	m.push(t, "a/x:1")
	mirrors := map[string][]string{up.host: {"http://" + m.host}}

	t.Run("request auth is not sent to a mirror", func(t *testing.T) {
		r := newResolver(t, Config{Mirrors: mirrors})
		img, ep, err := pull(t, r, up.host+"/a/x:1", &Auth{Username: testUser, Password: testPass})
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, want)
		if ep.Mirror {
			t.Errorf("served by the mirror with the registry's credentials")
		}
	})
	t.Run("docker config entry of the mirror host", func(t *testing.T) {
		r := newResolver(t, Config{Mirrors: mirrors, DockerConfig: writeDockerConfig(t, m.host, testUser, testPass)})
		_, ep, err := pull(t, r, up.host+"/a/x:1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ep.Mirror {
			t.Errorf("served by %+v, want the mirror", ep)
		}
	})
}

func TestInsecureTLS(t *testing.T) {
	up := newRegistry(t, regOpts{tls: true})
	want := up.push(t, "a/x:1")
	ref := up.host + "/a/x:1"

	t.Run("verified", func(t *testing.T) {
		r := newResolver(t, Config{})
		_, _, err := pull(t, r, ref, nil)
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "insecure") {
			t.Fatalf("error %v: want ErrUnavailable with a hint about insecure registries", err)
		}
	})
	t.Run("insecure host", func(t *testing.T) {
		r := newResolver(t, Config{Insecure: []string{"127.0.0.1"}})
		img, _, err := pull(t, r, ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, want)
	})
	t.Run("insecure https mirror", func(t *testing.T) {
		r := newResolver(t, Config{
			Mirrors:  map[string][]string{"docker.io": {"https://" + up.host}},
			Insecure: []string{up.host},
		})
		img, ep, err := pull(t, r, "docker.io/a/x:1", nil)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, want)
		if !ep.Mirror {
			t.Errorf("served by %+v, want the mirror", ep)
		}
	})
}

func TestUserAgent(t *testing.T) {
	var got atomic.Value
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got.Store(req.UserAgent())
		inner.ServeHTTP(w, req)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r := newResolver(t, Config{UserAgent: "berth/test"})
	_, _, _ = pull(t, r, host+"/a/x:1", nil)
	if ua, _ := got.Load().(string); !strings.Contains(ua, "berth/test") {
		t.Errorf("User-Agent %q, want berth/test", ua)
	}
}
