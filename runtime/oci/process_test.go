package oci

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestMergeProcess(t *testing.T) {
	ep, cmd := []string{"/ep-1"}, []string{"foo", "bar"}
	for _, tc := range []struct {
		name              string
		img, req          ProcessConfig
		wantArgv, wantEnv []string
		wantCwd           string
		wantErr           error
	}{
		// The kubelet's table.
		{name: "image only", img: ProcessConfig{Entrypoint: ep, Cmd: cmd}, wantArgv: []string{"/ep-1", "foo", "bar"}},
		{
			name: "command replaces entrypoint and drops cmd",
			img:  ProcessConfig{Entrypoint: ep, Cmd: cmd}, req: ProcessConfig{Entrypoint: []string{"/ep-2"}},
			wantArgv: []string{"/ep-2"},
		},
		{
			name: "args replace cmd",
			img:  ProcessConfig{Entrypoint: ep, Cmd: cmd}, req: ProcessConfig{Cmd: []string{"zoo", "boo"}},
			wantArgv: []string{"/ep-1", "zoo", "boo"},
		},
		{
			name: "command and args",
			img:  ProcessConfig{Entrypoint: ep, Cmd: cmd}, req: ProcessConfig{Entrypoint: []string{"/ep-2"}, Cmd: []string{"zoo", "boo"}},
			wantArgv: []string{"/ep-2", "zoo", "boo"},
		},
		// Other cases.
		{name: "cmd only image", img: ProcessConfig{Cmd: []string{"sh"}}, wantArgv: []string{"sh"}},
		{
			name: "args with cmd-only image",
			img:  ProcessConfig{Cmd: []string{"sh"}}, req: ProcessConfig{Cmd: []string{"/bin/true"}},
			wantArgv: []string{"/bin/true"},
		},
		{name: "nothing", wantErr: errdefs.ErrInvalidArgument},
		{name: "command without image", req: ProcessConfig{Entrypoint: []string{"/bin/true"}}, wantArgv: []string{"/bin/true"}},
		{
			name:     "env override keeps order",
			img:      ProcessConfig{Cmd: cmd, Env: []string{"PATH=/usr/bin", "A=1", "B=2"}},
			req:      ProcessConfig{Env: []string{"B=3", "C=4", "A=5"}},
			wantArgv: cmd, wantEnv: []string{"PATH=/usr/bin", "A=5", "B=3", "C=4"},
		},
		{
			name:     "default PATH first",
			img:      ProcessConfig{Cmd: cmd, Env: []string{"A=1"}},
			wantArgv: cmd, wantEnv: []string{DefaultPathEnv, "A=1"},
		},
		{
			name:     "bare key removes",
			img:      ProcessConfig{Cmd: cmd, Env: []string{"PATH=/bin", "A=1", "B=2"}},
			req:      ProcessConfig{Env: []string{"A", "Z"}},
			wantArgv: cmd, wantEnv: []string{"PATH=/bin", "B=2"},
		},
		{
			name:     "empty value is a value",
			img:      ProcessConfig{Cmd: cmd, Env: []string{"PATH=/bin", "A=1"}},
			req:      ProcessConfig{Env: []string{"A="}},
			wantArgv: cmd, wantEnv: []string{"PATH=/bin", "A="},
		},
		{
			name:     "duplicate keys in the image",
			img:      ProcessConfig{Cmd: cmd, Env: []string{"PATH=/bin", "A=1", "A=2"}},
			wantArgv: cmd, wantEnv: []string{"PATH=/bin", "A=2"},
		},
		{name: "image workdir", img: ProcessConfig{Cmd: cmd, WorkingDir: "/app"}, wantArgv: cmd, wantCwd: "/app"},
		{
			name: "request workdir wins",
			img:  ProcessConfig{Cmd: cmd, WorkingDir: "/app"}, req: ProcessConfig{WorkingDir: "/srv"},
			wantArgv: cmd, wantCwd: "/srv",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, env, cwd, err := MergeProcess(ProcessSources{Image: tc.img, Request: tc.req})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantEnv := tc.wantEnv
			if wantEnv == nil {
				wantEnv = []string{DefaultPathEnv}
			}
			wantCwd := tc.wantCwd
			if wantCwd == "" {
				wantCwd = "/"
			}
			if diff := cmp.Diff(tc.wantArgv, argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantEnv, env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if cwd != wantCwd {
				t.Errorf("cwd = %q, want %q", cwd, wantCwd)
			}
		})
	}

	// The inputs are not modified.
	imgEP := []string{"/ep", "x"}
	argv, _, _, _ := MergeProcess(ProcessSources{Image: ProcessConfig{Entrypoint: imgEP[:1], Cmd: []string{"y"}}})
	argv[0] = "changed"
	if imgEP[0] != "/ep" || imgEP[1] != "x" {
		t.Errorf("image entrypoint modified: %v", imgEP)
	}
}
