package engine

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestSplitImagePath(t *testing.T) {
	for _, tc := range []struct {
		rest, name, action string
		ok                 bool
	}{
		{"busybox/json", "busybox", "json", true},
		{"busybox:latest/json", "busybox:latest", "json", true},
		{"127.0.0.1:5000/busybox:latest/history", "127.0.0.1:5000/busybox:latest", "history", true},
		{"docker.io/library/busybox@sha256:abcd/get", "docker.io/library/busybox@sha256:abcd", "get", true},
		{"json/json", "json", "json", true},
		{"busybox", "", "", false},
		{"/json", "", "", false},
		{"busybox/", "", "", false},
	} {
		name, action, ok := splitImagePath(tc.rest)
		if name != tc.name || action != tc.action || ok != tc.ok {
			t.Errorf("splitImagePath(%q) = %q, %q, %v; want %q, %q, %v", tc.rest, name, action, ok, tc.name, tc.action, tc.ok)
		}
	}
}

// The image routes reach the right handler whatever the name holds.
func TestImageRoutesDispatch(t *testing.T) {
	s := &Server{}
	var got []string
	h := s.imageByName(map[string]imageHandler{
		"json": func(_ http.ResponseWriter, _ *http.Request, name string) error {
			got = append(got, "json "+name)
			return nil
		},
		"tag": func(_ http.ResponseWriter, _ *http.Request, name string) error {
			got = append(got, "tag "+name)
			return nil
		},
	})
	for _, path := range []string{"127.0.0.1:5000/busybox:latest/json", "busybox/tag", "busybox/history", "busybox"} {
		r := httptest.NewRequest("GET", "/images/"+path, nil)
		r.SetPathValue("rest", path)
		err := h(httptest.NewRecorder(), r)
		if (path == "busybox/history" || path == "busybox") != (err != nil) {
			t.Errorf("%s: error %v", path, err)
		}
	}
	if want := []string{"json 127.0.0.1:5000/busybox:latest", "tag busybox"}; !cmp.Equal(got, want) {
		t.Errorf("dispatched %v, want %v", got, want)
	}
}

func TestApplyChanges(t *testing.T) {
	base := v1.Config{Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh"}, WorkingDir: "/srv"}
	for _, tc := range []struct {
		name    string
		changes []string
		want    v1.Config
		err     bool
	}{
		{name: "cmd exec form", changes: []string{`CMD ["echo", "hi"]`},
			want: v1.Config{Env: base.Env, Cmd: []string{"echo", "hi"}, WorkingDir: "/srv"}},
		{name: "cmd shell form", changes: []string{`cmd echo hi`},
			want: v1.Config{Env: base.Env, Cmd: []string{"/bin/sh", "-c", "echo hi"}, WorkingDir: "/srv"}},
		{name: "entrypoint drops the old cmd", changes: []string{`ENTRYPOINT ["/bin/app"]`},
			want: v1.Config{Env: base.Env, Entrypoint: []string{"/bin/app"}, WorkingDir: "/srv"}},
		{name: "cmd then entrypoint keeps cmd", changes: []string{`CMD ["-v"]`, `ENTRYPOINT ["/bin/app"]`},
			want: v1.Config{Env: base.Env, Entrypoint: []string{"/bin/app"}, Cmd: []string{"-v"}, WorkingDir: "/srv"}},
		{name: "env forms", changes: []string{`ENV A=2 B="two words"`, `ENV C some value`},
			want: v1.Config{Env: []string{"PATH=/bin", "A=2", "B=two words", "C=some value"}, Cmd: base.Cmd, WorkingDir: "/srv"}},
		{name: "label, expose, volume, user, workdir, stopsignal", changes: []string{
			`LABEL a=b "c d"='e f'`, `EXPOSE 80 53/udp`, `VOLUME ["/data"]`, `VOLUME /logs /tmp/x`, `USER nobody`, `WORKDIR sub`, `STOPSIGNAL SIGINT`},
			want: v1.Config{Env: base.Env, Cmd: base.Cmd, WorkingDir: "/srv/sub", Labels: map[string]string{"a": "b", "c d": "e f"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}}, Volumes: map[string]struct{}{"/data": {}, "/logs": {}, "/tmp/x": {}},
				User: "nobody", StopSignal: "SIGINT"}},
		{name: "unknown instruction", changes: []string{"RUN echo"}, err: true},
		{name: "unmatched quote", changes: []string{`ENV A="x`}, err: true},
		{name: "empty user", changes: []string{"USER"}, err: true},
		{name: "shell needs json", changes: []string{"SHELL /bin/bash"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Env = append([]string{}, base.Env...)
			err := applyChanges(&cfg, tc.changes)
			if (err != nil) != tc.err {
				t.Fatalf("applyChanges = %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if diff := cmp.Diff(tc.want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReferenceMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"busybox", "docker.io/library/busybox:latest", true},
		{"busybox:latest", "docker.io/library/busybox:latest", true},
		{"busybox:1*", "docker.io/library/busybox:latest", false},
		{"busy*", "docker.io/library/busybox:1.36", true},
		{"127.0.0.1:5000/*", "127.0.0.1:5000/app:v1", true},
		{"app", "127.0.0.1:5000/app:v1", false},
		{"foo/*", "docker.io/foo/bar:1", true},
	} {
		if got := referenceMatch([]string{tc.pattern}, tc.name); got != tc.want {
			t.Errorf("referenceMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "2026-01-01T00:00:00Z", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-01-01", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "1700000000", want: time.Unix(1700000000, 0)},
		{in: "1700000000.5", want: time.Unix(1700000000, 500000000)},
		{in: "yesterday", err: true},
	} {
		got, err := parseTimestamp(tc.in, now)
		if (err != nil) != tc.err || !tc.err && !got.Equal(tc.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDecodeAuthConfig(t *testing.T) {
	js := `{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}`
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding} {
		cfg, err := decodeAuthConfig(enc.EncodeToString([]byte(js)))
		if err != nil || cfg.Username != "u" || cfg.Password != "p?>" || cfg.ServerAddress != "127.0.0.1:5000" {
			t.Errorf("decodeAuthConfig = %+v, %v", cfg, err)
		}
	}
	if _, err := decodeAuthConfig("!!!"); err == nil {
		t.Error("decodeAuthConfig accepted garbage")
	}
}

// docker commit's body config replaces the fields it sets, and leaves
// the others as the container had them.
func TestOverlayConfig(t *testing.T) {
	cfg := v1.Config{Cmd: []string{"sh"}, Env: []string{"A=1"}, WorkingDir: "/w", User: "root"}
	body := &container.Config{Cmd: []string{"echo", "x"}, User: "nobody", ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}}}
	if err := overlayConfig(&cfg, body); err != nil {
		t.Fatal(err)
	}
	want := v1.Config{Cmd: []string{"echo", "x"}, Env: []string{"A=1"}, WorkingDir: "/w", User: "nobody", ExposedPorts: map[string]struct{}{"80/tcp": {}}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}
