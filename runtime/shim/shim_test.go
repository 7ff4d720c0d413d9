package shim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestStartValidatesConfig(t *testing.T) {
	_, err := Start(context.Background(), "/bin/false", Config{ID: "x"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Start = %v, want ErrInvalidArgument", err)
	}
}

func TestStartShimThatDies(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: "x", Bundle: dir, Runtime: "/bin/true", ExitFile: filepath.Join(dir, "e"), Socket: filepath.Join(dir, "s"), PidFile: filepath.Join(dir, "p")}
	if _, err := Start(context.Background(), "/bin/true", cfg); err == nil {
		t.Error("Start with a shim that reports nothing succeeded")
	}
}

func TestClientWithoutShim(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	if _, err := Wait(context.Background(), sock); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Wait = %v, want ErrUnavailable", err)
	}
	if err := ReopenLog(context.Background(), sock); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("ReopenLog = %v, want ErrUnavailable", err)
	}
	if Alive(sock) {
		t.Error("Alive without a shim")
	}
}
