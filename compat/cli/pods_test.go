package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/compat/berthapi"
)

// fakeEngine serves handler on a unix socket and returns its -H value.
func fakeEngine(t *testing.T, handler http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

var testPods = []berthapi.Pod{
	{
		ID: strings.Repeat("a", 64), Name: "web", Origin: berthapi.OriginDocker, State: berthapi.StateReady,
		Created: time.Now().Add(-3 * time.Minute), IPs: []string{"10.213.1.2"},
		Containers: []berthapi.PodContainer{{ID: strings.Repeat("c", 64), Name: "web", Image: "busybox", State: "running"}},
	},
	{
		ID: strings.Repeat("b", 64), Name: "coredns-1", Namespace: "kube-system", UID: "u1", Origin: berthapi.OriginCRI,
		State: berthapi.StateNotReady, Created: time.Now().Add(-2 * time.Hour), Labels: map[string]string{"app": "dns", "tier": "x"},
	},
}

func TestPods(t *testing.T) {
	var gotFilters []string
	host := fakeEngine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != berthapi.PodsPath {
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
			return
		}
		gotFilters = append(gotFilters, r.URL.Query().Get("filters"))
		json.NewEncoder(w).Encode(testPods)
	}))
	for _, tc := range []struct {
		args    []string
		want    []string // lines, each field-separated
		filters string
	}{
		{[]string{"pods"}, []string{
			"POD ID NAME NAMESPACE ORIGIN STATE IP CONTAINERS CREATED",
			"aaaaaaaaaaaa web docker ready 10.213.1.2 1 3 minutes ago",
			"bbbbbbbbbbbb coredns-1 kube-system cri notready 0 2 hours ago",
		}, ""},
		{[]string{"pods", "-q", "--no-trunc"}, []string{strings.Repeat("a", 64), strings.Repeat("b", 64)}, ""},
		{[]string{"pods", "--format", "{{.Name}}/{{.Namespace}}/{{.Labels}}/{{.Label \"app\"}}", "-f", "origin=cri"},
			[]string{"web///", "coredns-1/kube-system/app=dns,tier=x/dns"}, `{"origin":{"cri":true}}`},
		{[]string{"ps", "--pods", "-q"}, []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb"}, ""},
		{[]string{"container", "ls", "--pods", "--filter", "state=ready", "--format", "{{.Origin}}"}, []string{"docker", "cri"}, `{"state":{"ready":true}}`},
	} {
		gotFilters = nil
		out, errOut, err := berth(t, nil, append([]string{"-H", host}, tc.args...)...)
		if err != nil {
			t.Errorf("berth %s: %v: %s", strings.Join(tc.args, " "), err, errOut)
			continue
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
		if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("berth %s:\n%s\nwant\n%s", strings.Join(tc.args, " "), strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
		}
		if len(gotFilters) != 1 || gotFilters[0] != tc.filters {
			t.Errorf("berth %s sent filters %q, want %q", strings.Join(tc.args, " "), gotFilters, tc.filters)
		}
	}

	out, _, err := berth(t, nil, "-H", host, "pods", "--format", "json")
	var row map[string]any
	if err != nil || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &row) != nil || row["Name"] != "web" || row["ID"] != "aaaaaaaaaaaa" {
		t.Errorf("--format json: %q, %v", out, err)
	}
}

func TestPodsErrors(t *testing.T) {
	// A docker engine (or an older berthd) has no such endpoint.
	host := fakeEngine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"page not found"}`))
	}))
	_, _, err := berth(t, nil, "-H", host, "pods")
	if err == nil || !strings.Contains(err.Error(), "does not serve GET "+berthapi.PodsPath) {
		t.Errorf("no endpoint: %v", err)
	}
	// The server's own error reaches the user as docker's.
	host = fakeEngine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"message":"invalid filter 'colour'"}`))
	}))
	_, _, err = berth(t, nil, "-H", host, "pods", "-f", "colour=red")
	if err == nil || err.Error() != "Error response from daemon: invalid filter 'colour'" {
		t.Errorf("bad filter: %v", err)
	}
	// Arguments are a usage error, before any request.
	if _, _, err := berth(t, nil, "-H", host, "pods", "extra"); err == nil || !strings.Contains(err.Error(), "accepts no arguments") {
		t.Errorf("pods extra: %v", err)
	}
}
