package runtime

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestResolveIn: container paths resolve inside the container's root,
// whatever its symlinks say, and continue in a bind mount's source,
// confined to it.
func TestResolveIn(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600)
	root, src := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "data"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), nil, 0o644)
	os.Symlink(outside, filepath.Join(root, "abs"))
	os.Symlink("../../../../../../.."+outside, filepath.Join(root, "climb"))
	os.Symlink("/etc", filepath.Join(root, "etclink"))
	os.Symlink("/", filepath.Join(src, "up"))
	os.Symlink("/data/../../..", filepath.Join(root, "viadata"))
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hostsFile, nil, 0o644)
	mounts := []specs.Mount{
		{Destination: "/data", Source: src, Type: "bind", Options: []string{"rbind", "ro"}},
		{Destination: "/etc/hosts", Source: hostsFile, Type: "bind"},
	}
	for _, tc := range []struct {
		path            string
		root, host      string
		readOnly, mount bool
	}{
		{"/etc/passwd", root, filepath.Join(root, "etc/passwd"), false, false},
		{"/abs/secret", root, filepath.Join(root, outside, "secret"), false, false},
		{"/climb/secret", root, filepath.Join(root, outside, "secret"), false, false},
		{"/etclink/passwd", root, filepath.Join(root, "etc/passwd"), false, false},
		{"/../../../etc", root, filepath.Join(root, "etc"), false, false},
		{"/data/f", src, filepath.Join(src, "f"), true, true},
		{"/data/up/secret", src, filepath.Join(src, "secret"), true, true},
		{"/etc/hosts", filepath.Dir(hostsFile), hostsFile, false, true},
		{"/viadata/etc/passwd", root, filepath.Join(root, "etc/passwd"), false, false},
	} {
		got, err := resolveIn(root, false, mounts, tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		want := resolved{root: tc.root, host: tc.host, readOnly: tc.readOnly, inMount: tc.mount}
		if got != want {
			t.Errorf("%s: got %+v, want %+v", tc.path, got, want)
		}
	}
}
