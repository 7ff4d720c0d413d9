package cni

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultNetwork(t *testing.T) {
	conf, bin := t.TempDir(), t.TempDir()
	if _, err := DefaultNetwork(conf, []string{bin}); err == nil || !strings.Contains(err.Error(), "no network config") {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(conf, "05-broken.conflist"), []byte("{nope"), 0o644)
	os.WriteFile(filepath.Join(conf, "10-pods.conflist"), []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},{"type":"portmap"}]}`), 0o644)
	if _, err := DefaultNetwork(conf, []string{bin}); err == nil || !strings.Contains(err.Error(), `plugin "bridge"`) {
		t.Errorf("missing plugin: %v", err)
	}
	for _, p := range []string{"bridge", "portmap"} {
		os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755)
	}
	list, err := DefaultNetwork(conf, []string{"/nonexistent", bin})
	if err != nil {
		t.Fatal(err)
	}
	if list.Name != "pods" {
		t.Errorf("network = %q", list.Name)
	}
}
