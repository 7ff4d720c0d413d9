package monitor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/runtime/shim/shimapi"
)

func TestParseConfigMatchesEncodingJSON(t *testing.T) {
	cfg := shimapi.Config{
		ID: "c1", Bundle: "/run/b/<é>&\u2028", Runtime: "/usr/bin/runc", RuntimeRoot: "/run/runc",
		SystemdCgroup: true, LogPath: "/var/log/x \"y\".log", ExitFile: "/e", Socket: "/s", PidFile: "/p",
		Terminal: true, Stdin: true, StdinOnce: true, MaxLineSize: 16384,
	}
	b, _ := json.Marshal(cfg)
	got, err := parseConfig(b)
	if err != nil || got != cfg {
		t.Fatalf("parseConfig = %+v, %v; want %+v", got, err, cfg)
	}
	for _, in := range []string{`{"ID":"x","unknown":[1,{"a":2}],"maxLineSize":null,"terminal":null}`, `{"maxLineSize":1.5}`, `{"id":1}`, `{"stdin":"yes"}`, `{`} {
		var want shimapi.Config
		werr := json.Unmarshal([]byte(in), &want)
		got, err := parseConfig([]byte(in))
		if (err == nil) != (werr == nil) || (err == nil && got != want) {
			t.Errorf("parseConfig(%s) = %+v, %v; encoding/json %+v, %v", in, got, err, want, werr)
		}
	}
}

func TestParseRequestMatchesEncodingJSON(t *testing.T) {
	for _, r := range []shimapi.Request{{Op: "wait"}, {Op: "resize", Width: 80, Height: 24}, {Op: "attach", Stdin: true, Stdout: true, Stderr: true}} {
		b, _ := json.Marshal(r)
		got, err := parseRequest(append(b, '\n'))
		if err != nil || got != r {
			t.Errorf("parseRequest(%s) = %+v, %v", b, got, err)
		}
	}
	for _, in := range []string{`{"op":"resize","width":70000}`, `{"op":"resize","width":-1}`, `{"Op":"WAIT"}`, `not json`} {
		var want shimapi.Request
		werr := json.Unmarshal([]byte(in), &want)
		got, err := parseRequest([]byte(in))
		if (err == nil) != (werr == nil) || (err == nil && got != want) {
			t.Errorf("parseRequest(%s) = %+v, %v; encoding/json %+v, %v", in, got, err, want, werr)
		}
	}
}

func TestEncodersMatchEncodingJSON(t *testing.T) {
	st := shimapi.ExitStatus{ExitCode: 137, Signal: 9, OOMKilled: true, ExitedAt: time.Now().UTC()}
	st0 := shimapi.ExitStatus{ExitedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, r := range []shimapi.Response{{}, {Error: "x <y> \"z\"\n"}, {Exit: &st}, {Exit: &st0}, {Error: "e", Exit: &st}} {
		want, _ := json.Marshal(r)
		if got := appendResponse(nil, r); string(got) != string(want) {
			t.Errorf("appendResponse = %s, want %s", got, want)
		}
	}
	want, _ := json.Marshal(st)
	if got := shimapi.AppendExitStatus(nil, st); string(got) != string(want) {
		t.Errorf("AppendExitStatus = %s, want %s", got, want)
	}
	for _, m := range []shimapi.SyncMsg{{ShimPid: 12}, {Pid: 34}, {Error: "runc create: oops \"x\" <&>"}, {}, {ShimPid: 1, Pid: 2, Error: "e"}} {
		p := filepath.Join(t.TempDir(), "sync")
		f, _ := os.Create(p)
		report(f, m)
		f.Close()
		got, _ := os.ReadFile(p)
		want, _ := json.Marshal(m)
		if string(got) != string(want)+"\n" {
			t.Errorf("report = %q, want %q", got, want)
		}
	}
}

func TestLastError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.json")
	log := strings.Join([]string{
		`{"level":"info","msg":"starting","time":"2024"}`,
		`{"level":"error","msg":"first failure","time":"2024","extra":{"a":[1,2]}}`,
		`not json`,
		`{"level":"warning","msg":"meh"}`,
		`{"level":"error","msg":"exec: \"/no/such\": no such file or directory","time":"x"}`,
		`{"level":"error","msg":5}`,
	}, "\n")
	os.WriteFile(p, []byte(log), 0o644)
	if got, want := lastError(p), `exec: "/no/such": no such file or directory`; got != want {
		t.Errorf("lastError = %q, want %q", got, want)
	}
	if got := lastError(p + ".none"); got != "" {
		t.Errorf("lastError(missing) = %q", got)
	}
}
