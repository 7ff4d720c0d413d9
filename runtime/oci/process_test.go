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
		name                  string
		imgEP, imgCmd, imgEnv []string
		imgWorkdir            string
		command, args, env    []string
		workdir               string
		wantArgv, wantEnv     []string
		wantCwd               string
		wantErr               error
	}{
		// The kubelet's table.
		{name: "image only", imgEP: ep, imgCmd: cmd, wantArgv: []string{"/ep-1", "foo", "bar"}},
		{name: "command replaces entrypoint and drops cmd", imgEP: ep, imgCmd: cmd, command: []string{"/ep-2"}, wantArgv: []string{"/ep-2"}},
		{name: "args replace cmd", imgEP: ep, imgCmd: cmd, args: []string{"zoo", "boo"}, wantArgv: []string{"/ep-1", "zoo", "boo"}},
		{name: "command and args", imgEP: ep, imgCmd: cmd, command: []string{"/ep-2"}, args: []string{"zoo", "boo"}, wantArgv: []string{"/ep-2", "zoo", "boo"}},
		// Other cases.
		{name: "cmd only image", imgCmd: []string{"sh"}, wantArgv: []string{"sh"}},
		{name: "args with cmd-only image", imgCmd: []string{"sh"}, args: []string{"/bin/true"}, wantArgv: []string{"/bin/true"}},
		{name: "nothing", wantErr: errdefs.ErrInvalidArgument},
		{name: "command without image", command: []string{"/bin/true"}, wantArgv: []string{"/bin/true"}},
		{
			name: "env override keeps order", imgCmd: cmd,
			imgEnv:   []string{"PATH=/usr/bin", "A=1", "B=2"},
			env:      []string{"B=3", "C=4", "A=5"},
			wantArgv: cmd, wantEnv: []string{"PATH=/usr/bin", "A=5", "B=3", "C=4"},
		},
		{
			name: "default PATH first", imgCmd: cmd,
			imgEnv:   []string{"A=1"},
			wantArgv: cmd, wantEnv: []string{DefaultPathEnv, "A=1"},
		},
		{
			name: "bare key removes", imgCmd: cmd,
			imgEnv:   []string{"PATH=/bin", "A=1", "B=2"},
			env:      []string{"A", "Z"},
			wantArgv: cmd, wantEnv: []string{"PATH=/bin", "B=2"},
		},
		{
			name: "empty value is a value", imgCmd: cmd,
			imgEnv:   []string{"PATH=/bin", "A=1"},
			env:      []string{"A="},
			wantArgv: cmd, wantEnv: []string{"PATH=/bin", "A="},
		},
		{
			name: "duplicate keys in the image", imgCmd: cmd,
			imgEnv:   []string{"PATH=/bin", "A=1", "A=2"},
			wantArgv: cmd, wantEnv: []string{"PATH=/bin", "A=2"},
		},
		{name: "image workdir", imgCmd: cmd, imgWorkdir: "/app", wantArgv: cmd, wantCwd: "/app"},
		{name: "request workdir wins", imgCmd: cmd, imgWorkdir: "/app", workdir: "/srv", wantArgv: cmd, wantCwd: "/srv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, env, cwd, err := MergeProcess(tc.imgEP, tc.imgCmd, tc.imgEnv, tc.imgWorkdir, tc.command, tc.args, tc.env, tc.workdir)
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
	argv, _, _, _ := MergeProcess(imgEP[:1], []string{"y"}, nil, "", nil, nil, nil, "")
	argv[0] = "changed"
	if imgEP[0] != "/ep" || imgEP[1] != "x" {
		t.Errorf("image entrypoint modified: %v", imgEP)
	}
}
