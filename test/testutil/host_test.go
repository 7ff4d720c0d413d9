package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRootTierGate(t *testing.T) {
	for _, tc := range []struct {
		env      string
		wantSkip bool
	}{
		{"", true},
		{"0", true},
		{"1", os.Geteuid() != 0},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Setenv(RootTestsEnv, tc.env)
			var skipped bool
			t.Run("inner", func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				// Called through a variable: the Makefile lists packages
				// whose tests call it by name as test-root packages.
				requires := RequiresRoot
				requires(t)
			})
			if skipped != tc.wantSkip {
				t.Errorf("skipped = %v, want %v", skipped, tc.wantSkip)
			}
		})
	}
}

func TestBusyboxPathSkips(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "busybox")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing": filepath.Join(dir, "nope"),
		"not elf": notELF,
		"dir":     dir,
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(BusyboxEnv, path)
			var skipped bool
			t.Run("inner", func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				BusyboxPath(t)
			})
			if !skipped {
				t.Errorf("BusyboxPath did not skip for %s", path)
			}
		})
	}
	// /bin/ls is dynamically linked on any usual distribution.
	if _, err := readStaticBusybox("/bin/ls"); err == nil {
		t.Error("a dynamically linked /bin/ls passed as a static busybox")
	} else {
		t.Log(err)
	}
}

func TestBusyboxPathDefault(t *testing.T) {
	t.Setenv(BusyboxEnv, "")
	if p := BusyboxPath(t); p != DefaultBusyboxPath {
		t.Errorf("BusyboxPath = %q", p)
	}
}
