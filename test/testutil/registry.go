package testutil

import (
	"crypto/subtle"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// AuthRealm is the realm of the Basic challenge sent by a registry made with
// WithBasicAuth.
const AuthRealm = "berth-testutil"

// Registry is an in-memory OCI distribution registry
// (github.com/google/go-containerregistry/pkg/registry) served over plain
// HTTP on 127.0.0.1, with optional basic auth, slow blob downloads and
// request counters. It is closed at t.Cleanup.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of references.
	Host string
	// URL is "http://127.0.0.1:PORT".
	URL string

	opts    registryOptions
	inner   http.Handler
	srv     *httptest.Server
	closing chan struct{}
	close   sync.Once

	mu       sync.Mutex
	blobGets map[v1.Hash]int
	requests []Request
}

// Request is one request the registry received, as recorded by Requests.
type Request struct {
	Method string
	Path   string
	// Range is the Range header, if any.
	Range string
	// Status is the response status; 0 if the handler was cut short before
	// writing one (for instance by Close).
	Status int
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	user, password string
	blobDelay      time.Duration
	throttle       int64 // bytes per second; 0 means unlimited
	errs           []string
}

// WithBasicAuth requires HTTP basic auth with user and password on /v2/ and
// everything below it. Requests without valid credentials get 401 with
// `WWW-Authenticate: Basic realm="berth-testutil"` and an UNAUTHORIZED error
// body. Push and RemoteOptions use the credentials.
func WithBasicAuth(user, password string) RegistryOption {
	return func(o *registryOptions) {
		if user == "" {
			o.errs = append(o.errs, "WithBasicAuth: empty user")
		}
		o.user, o.password = user, password
	}
}

// WithBlobDelay delays the response to every blob GET by d (headers
// included). The delay ends early if the client goes away or the registry is
// closed.
func WithBlobDelay(d time.Duration) RegistryOption {
	return func(o *registryOptions) {
		if d < 0 {
			o.errs = append(o.errs, "WithBlobDelay: negative delay")
		}
		o.blobDelay = d
	}
}

// WithThrottle limits the body of every blob GET to about bytesPerSecond,
// written in small flushed chunks, so that a test can interrupt a pull half
// way through a layer. Manifests and HEAD requests are not throttled.
func WithThrottle(bytesPerSecond int64) RegistryOption {
	return func(o *registryOptions) {
		if bytesPerSecond <= 0 {
			o.errs = append(o.errs, "WithThrottle: bytes per second must be positive")
		}
		o.throttle = bytesPerSecond
	}
}

// NewRegistry starts a registry on 127.0.0.1 and registers its Close with
// t.Cleanup.
func NewRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.errs) > 0 {
		t.Fatalf("NewRegistry: %s", strings.Join(o.errs, "; "))
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("NewRegistry: listening on 127.0.0.1: %v", err)
	}
	r := &Registry{
		opts:     o,
		inner:    registry.New(registry.Logger(log.New(io.Discard, "", 0))), // quiet: Requests records them
		closing:  make(chan struct{}),
		blobGets: map[v1.Hash]int{},
	}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.Listener = ln
	r.srv.Start()
	r.URL = r.srv.URL
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	t.Cleanup(r.Close)
	return r
}

// Close stops the registry, cutting off requests in flight (including
// delayed and throttled ones). It is idempotent; NewRegistry registers it
// with t.Cleanup, and a test may call it earlier to make the registry go away.
func (r *Registry) Close() {
	r.close.Do(func() {
		close(r.closing)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
}

// Ref returns the reference of repoTag on this registry:
// Ref("busybox:latest") is Host + "/busybox:latest".
func (r *Registry) Ref(repoTag string) string {
	return r.Host + "/" + repoTag
}

// Auth returns the authenticator for this registry: the WithBasicAuth
// credentials, or anonymous.
func (r *Registry) Auth() authn.Authenticator {
	if r.opts.user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.opts.user, Password: r.opts.password}
}

// RemoteOptions returns go-containerregistry remote options for talking to
// this registry (its credentials), for tests that pull or push directly.
func (r *Registry) RemoteOptions() []remote.Option {
	return []remote.Option{remote.WithAuth(r.Auth())}
}

// Push writes img under repoTag ("busybox:latest"; a missing tag means
// latest) and returns its manifest digest.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) v1.Hash {
	t.Helper()
	ref := r.parse(t, repoTag)
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	if err := remote.Write(ref, img, append(r.RemoteOptions(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return d
}

// PushIndex writes idx (an OCI index or Docker manifest list) and all its
// images under repoTag and returns the index digest.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	ref := r.parse(t, repoTag)
	d, err := idx.Digest()
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	if err := remote.WriteIndex(ref, idx, append(r.RemoteOptions(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return d
}

func (r *Registry) parse(t testing.TB, repoTag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(repoTag), name.Insecure)
	if err != nil {
		t.Fatalf("bad reference %q: %v", repoTag, err)
	}
	return ref
}

// BlobGets returns how many GET requests for blob d the registry has
// received (authorized ones, in any repository) since it started or since
// ResetCounters.
func (r *Registry) BlobGets(d v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[d]
}

// Requests returns every request received since the registry started or
// since ResetCounters, in arrival order.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// ResetCounters forgets the requests and blob GETs recorded so far, for
// example after Push, so that a test counts only its pulls.
func (r *Registry) ResetCounters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobGets = map[v1.Hash]int{}
	r.requests = nil
}

// ServeHTTP implements http.Handler: auth, counting, delay and throttling
// wrapped around go-containerregistry's registry.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	i := r.record(Request{Method: req.Method, Path: req.URL.Path, Range: req.Header.Get("Range")})
	defer func() { r.setStatus(i, rec.status) }()

	if !r.authorized(req) {
		rec.Header().Set("WWW-Authenticate", `Basic realm="`+AuthRealm+`"`)
		rec.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(http.StatusUnauthorized)
		io.WriteString(rec, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`+"\n")
		return
	}

	var out http.ResponseWriter = rec
	if d, ok := blobGet(req.Method, req.URL.Path); ok {
		r.mu.Lock()
		r.blobGets[d]++
		r.mu.Unlock()
		if r.opts.blobDelay > 0 {
			if err := r.sleepUntil(req, time.Now().Add(r.opts.blobDelay)); err != nil {
				return
			}
		}
		if r.opts.throttle > 0 {
			out = &throttledWriter{statusRecorder: rec, r: r, req: req, bps: r.opts.throttle, start: time.Now()}
		}
	}
	r.inner.ServeHTTP(out, req)
}

func (r *Registry) authorized(req *http.Request) bool {
	if r.opts.user == "" {
		return true
	}
	user, password, ok := req.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(r.opts.user)) == 1
	passwordOK := subtle.ConstantTimeCompare([]byte(password), []byte(r.opts.password)) == 1
	return ok && userOK && passwordOK
}

func (r *Registry) record(req Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	return len(r.requests) - 1
}

func (r *Registry) setStatus(i, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// ResetCounters may have dropped the entry meanwhile.
	if i < len(r.requests) && r.requests[i].Status == 0 {
		r.requests[i].Status = status
	}
}

var errClosing = errors.New("registry closing")

// sleepUntil waits until t, the client going away, or Close.
func (r *Registry) sleepUntil(req *http.Request, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-req.Context().Done():
		return req.Context().Err()
	case <-r.closing:
		return errClosing
	}
}

// blobGet reports whether method and path are GET /v2/<name>/blobs/<digest>,
// and the digest.
func blobGet(method, path string) (v1.Hash, bool) {
	if method != http.MethodGet {
		return v1.Hash{}, false
	}
	elem := strings.Split(strings.Trim(path, "/"), "/")
	if len(elem) < 4 || elem[0] != "v2" || elem[len(elem)-2] != "blobs" {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(elem[len(elem)-1])
	if err != nil {
		return v1.Hash{}, false
	}
	return h, true
}

// statusRecorder remembers the response status.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// throttledWriter writes a response body at about bps bytes per second, in
// flushed chunks of a twentieth of a second's worth.
type throttledWriter struct {
	*statusRecorder
	r       *Registry
	req     *http.Request
	bps     int64
	start   time.Time
	written int64
}

func (w *throttledWriter) Write(p []byte) (int, error) {
	chunk := max(w.bps/20, 512)
	n := 0
	for len(p) > 0 {
		c := min(int64(len(p)), chunk)
		due := w.start.Add(time.Duration(float64(w.written+c) / float64(w.bps) * float64(time.Second)))
		if err := w.r.sleepUntil(w.req, due); err != nil {
			return n, err
		}
		m, err := w.statusRecorder.Write(p[:c])
		n += m
		w.written += int64(m)
		if err != nil {
			return n, err
		}
		w.statusRecorder.Flush()
		p = p[c:]
	}
	return n, nil
}
