package ocirt_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/ocirt"
)

// fakeRuntime writes a script that behaves like runc failing with msg in
// its JSON log (the argument after --log).
func fakeRuntime(t *testing.T, msg string) *ocirt.Runtime {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "fakerunc")
	line, _ := json.Marshal(map[string]string{"level": "error", "msg": msg, "time": "2024-01-01T00:00:00Z"})
	if err := os.WriteFile(filepath.Join(dir, "msg"), append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
log=""
while [ $# -gt 0 ]; do case "$1" in --log) log="$2"; shift 2;; *) shift;; esac; done
echo '{"level":"info","msg":"starting","time":"2024-01-01T00:00:00Z"}' >> "$log"
cat ` + filepath.Join(dir, "msg") + ` >> "$log"
echo "stderr noise" >&2
exit 1
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &ocirt.Runtime{Binary: p, Root: t.TempDir()}
}

func TestErrorsCarryRuntimeMessage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		msg      string
		sentinel error
		call     func(r *ocirt.Runtime) error
	}{
		{"can't get final child's PID from pipe: EOF", nil, func(r *ocirt.Runtime) error { return r.Start(ctx, "c") }},
		{"container does not exist", errdefs.ErrNotFound, func(r *ocirt.Runtime) error { _, err := r.State(ctx, "c"); return err }},
		{"container not running", errdefs.ErrFailedPrecondition, func(r *ocirt.Runtime) error { return r.Kill(ctx, "c", syscall.SIGTERM, false) }},
		{"container with id exists: c", errdefs.ErrAlreadyExists, func(r *ocirt.Runtime) error { return r.Start(ctx, "c") }},
		{"container does not exist", nil, func(r *ocirt.Runtime) error { return r.Delete(ctx, "c", true) }}, // missing is not an error
	}
	for _, tc := range tests {
		err := tc.call(fakeRuntime(t, tc.msg))
		if strings.HasPrefix(tc.msg, "container does not exist") && tc.sentinel == nil {
			if err != nil {
				t.Errorf("Delete of missing container: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("error %v does not carry %q", err, tc.msg)
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("error %v is not %v", err, tc.sentinel)
		}
		if tc.sentinel == nil {
			// An unknown failure stays unclassified.
			for _, s := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrFailedPrecondition} {
				if errors.Is(err, s) {
					t.Errorf("error %v is classified as %v", err, s)
				}
			}
		}
	}
}
