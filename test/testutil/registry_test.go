package testutil

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestRegistryHost(t *testing.T) {
	reg := NewRegistry(t)
	if reg.URL != "http://"+reg.Host || reg.Host[:len("127.0.0.1:")] != "127.0.0.1:" {
		t.Errorf("Host %q URL %q", reg.Host, reg.URL)
	}
	if got := reg.Ref("busybox:latest"); got != reg.Host+"/busybox:latest" {
		t.Errorf("Ref = %q", got)
	}
	resp, err := http.Get(reg.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ without auth configured: %s", resp.Status)
	}
}

func TestRegistryBasicAuth(t *testing.T) {
	reg := NewRegistry(t, WithBasicAuth("alice", "s3cret"))
	img := BusyboxImage(t)
	want := reg.Push(t, "busybox:latest", img) // Push uses the credentials.

	for _, tc := range []struct {
		name       string
		path       string
		user, pass string
		noAuth     bool
		status     int
	}{
		{name: "ping without credentials", path: "/v2/", noAuth: true, status: http.StatusUnauthorized},
		{name: "ping with bad password", path: "/v2/", user: "alice", pass: "wrong", status: http.StatusUnauthorized},
		{name: "ping with bad user", path: "/v2/", user: "bob", pass: "s3cret", status: http.StatusUnauthorized},
		{name: "ping with good credentials", path: "/v2/", user: "alice", pass: "s3cret", status: http.StatusOK},
		{name: "manifest without credentials", path: "/v2/busybox/manifests/latest", noAuth: true, status: http.StatusUnauthorized},
		{name: "blob without credentials", path: "/v2/busybox/blobs/" + want.String(), noAuth: true, status: http.StatusUnauthorized},
		{name: "manifest with good credentials", path: "/v2/busybox/manifests/latest", user: "alice", pass: "s3cret", status: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, reg.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
			if !tc.noAuth {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="berth-testutil"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			}
		})
	}

	t.Run("remote with good credentials", func(t *testing.T) {
		if d := mustDigest(t, pullImage(t, reg, "busybox:latest")); d != want {
			t.Errorf("pulled %s, want %s", d, want)
		}
	})
	t.Run("remote with bad credentials", func(t *testing.T) {
		_, err := remote.Image(mustParse(t, reg.Ref("busybox:latest")), remote.WithAuth(&authn.Basic{Username: "alice", Password: "nope"}))
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Errorf("got %v, want a 401 transport error", err)
		}
	})
	t.Run("remote anonymous", func(t *testing.T) {
		_, err := remote.Image(mustParse(t, reg.Ref("busybox:latest")))
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Errorf("got %v, want a 401 transport error", err)
		}
	})
}

// readLayers downloads every layer blob of img.
func readLayers(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

func TestRegistryBlobGets(t *testing.T) {
	reg := NewRegistry(t)
	img := BusyboxImage(t)
	reg.Push(t, "a:latest", img)
	reg.Push(t, "b:latest", img)
	reg.ResetCounters()

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	check := func(want int) {
		t.Helper()
		for _, l := range m.Layers {
			if got := reg.BlobGets(l.Digest); got != want {
				t.Errorf("layer %s: %d GETs, want %d", l.Digest, got, want)
			}
		}
	}
	check(0)
	pulled := pullImage(t, reg, "a:latest")
	if _, err := pulled.ConfigFile(); err != nil {
		t.Fatal(err)
	}
	if got := reg.BlobGets(m.Config.Digest); got != 1 {
		t.Errorf("config: %d GETs, want 1", got)
	}
	check(0)
	readLayers(t, pulled)
	check(1)
	readLayers(t, pullImage(t, reg, "b:latest")) // another repository, same blobs
	check(2)
	if got := reg.BlobGets(v1.Hash{Algorithm: "sha256", Hex: "00"}); got != 0 {
		t.Errorf("unknown blob: %d GETs", got)
	}

	var blobGets int
	for _, r := range reg.Requests() {
		if _, ok := blobGet(r.Method, r.Path); ok && r.Status == http.StatusOK {
			blobGets++
		}
	}
	if want := 2*len(m.Layers) + reg.BlobGets(m.Config.Digest); blobGets != want {
		t.Errorf("Requests shows %d successful blob GETs, want %d", blobGets, want)
	}
	reg.ResetCounters()
	check(0)
	if len(reg.Requests()) != 0 {
		t.Errorf("Requests after ResetCounters: %v", reg.Requests())
	}
}

func TestRegistryThrottle(t *testing.T) {
	img, err := RandomLayersImage(1, 64<<10, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	size, err := layers[0].Size()
	if err != nil {
		t.Fatal(err)
	}

	const bps = 128 << 10
	reg := NewRegistry(t, WithThrottle(bps))
	reg.Push(t, "random:latest", img)
	pulled := pullImage(t, reg, "random:latest")
	start := time.Now()
	readLayers(t, pulled)
	elapsed := time.Since(start)
	if min := time.Duration(float64(size) / bps * float64(time.Second) * 0.9); elapsed < min {
		t.Errorf("%d bytes at %d B/s took %v, want at least %v", size, bps, elapsed, min)
	}
}

func TestRegistryCloseCutsSlowDownload(t *testing.T) {
	img, err := RandomLayersImage(1, 1<<20, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(t, WithThrottle(16<<10))
	reg.Push(t, "random:latest", img)
	layers, err := pullImage(t, reg, "random:latest").Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 4<<10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatalf("reading the start of a throttled blob: %v", err)
	}

	done := make(chan struct{})
	go func() { reg.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a throttled download")
	}
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Error("download completed after Close")
	}
	reg.Close() // idempotent
}

func TestRegistryBlobDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	reg := NewRegistry(t, WithBlobDelay(delay))
	img := BusyboxImage(t)
	reg.Push(t, "busybox:latest", img)
	pulled := pullImage(t, reg, "busybox:latest")
	start := time.Now()
	if _, err := pulled.RawConfigFile(); err != nil { // one blob GET
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("blob GET took %v, want at least %v", elapsed, delay)
	}
}

func TestRegistryRequests(t *testing.T) {
	reg := NewRegistry(t, WithBasicAuth("u", "p"))
	resp, err := http.Get(reg.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []Request{{Method: http.MethodGet, Path: "/v2/", Status: http.StatusUnauthorized}}
	if diff := cmp.Diff(want, reg.Requests()); diff != "" {
		t.Errorf("Requests (-want +got):\n%s", diff)
	}
}
