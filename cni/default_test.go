package cni

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func fakeBinDir(t *testing.T, plugins ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugins {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestEnsureDefaultConfig(t *testing.T) {
	for _, tc := range []struct {
		name        string
		bin         []string
		wantPlugins []string
	}{
		{name: "all plugins", bin: []string{"bridge", "host-local", "portmap", "firewall"}, wantPlugins: []string{"bridge", "portmap", "firewall"}},
		{name: "no portmap or firewall", bin: []string{"bridge", "host-local"}, wantPlugins: []string{"bridge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, data := filepath.Join(t.TempDir(), "net.d"), t.TempDir()
			m, err := NewManager(Options{
				ConfDir:  conf,
				BinDirs:  []string{"/nonexistent", fakeBinDir(t, tc.bin...)},
				CacheDir: t.TempDir(),
				Default:  DefaultConfig{DataDir: data},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Ready(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("Ready before config = %v, want ErrFailedPrecondition", err)
			}
			for i, want := range []bool{true, false} {
				wrote, err := m.EnsureDefaultConfig()
				if err != nil {
					t.Fatal(err)
				}
				if wrote != want {
					t.Errorf("call %d wrote = %v, want %v", i+1, wrote, want)
				}
			}
			if err := m.Ready(); err != nil {
				t.Errorf("Ready: %v", err)
			}
			raw, err := os.ReadFile(filepath.Join(conf, DefaultConfFile))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				CNIVersion string `json:"cniVersion"`
				Name       string
				Plugins    []map[string]any
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != "berth" || got.CNIVersion != "1.0.0" {
				t.Errorf("name %q version %q", got.Name, got.CNIVersion)
			}
			var types []string
			for _, p := range got.Plugins {
				types = append(types, p["type"].(string))
			}
			if diff := cmp.Diff(tc.wantPlugins, types); diff != "" {
				t.Errorf("plugins (-want +got):\n%s", diff)
			}
			wantBridge := map[string]any{
				"type": "bridge", "bridge": "berth0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  []any{[]any{map[string]any{"subnet": "10.89.0.0/16"}}},
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
					"dataDir": data,
				},
			}
			if diff := cmp.Diff(wantBridge, got.Plugins[0]); diff != "" {
				t.Errorf("bridge plugin (-want +got):\n%s", diff)
			}
			if len(got.Plugins) > 1 {
				if diff := cmp.Diff(map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}}, got.Plugins[1]); diff != "" {
					t.Errorf("portmap plugin (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestEnsureDefaultConfigKeepsOperatorFiles(t *testing.T) {
	conf := t.TempDir()
	// Even a broken file is the operator's: do not shadow it.
	if err := os.WriteFile(filepath.Join(conf, "99-mine.conf"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Options{ConfDir: conf, BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir(), Default: DefaultConfig{DataDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	wrote, err := m.EnsureDefaultConfig()
	if err != nil || wrote {
		t.Errorf("EnsureDefaultConfig = %v, %v; want false, nil", wrote, err)
	}
	if _, err := os.Stat(filepath.Join(conf, DefaultConfFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("default config written: %v", err)
	}
}

func TestEnsureDefaultConfigInvalid(t *testing.T) {
	for name, d := range map[string]DefaultConfig{
		"no data dir":   {},
		"relative data": {DataDir: "ipam"},
		"bad subnet":    {DataDir: "/x", Subnet: "10.89.0.0"},
		"long bridge":   {DataDir: "/x", Bridge: "abcdefghijklmnop"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := NewManager(Options{ConfDir: t.TempDir(), BinDirs: []string{"/x"}, CacheDir: t.TempDir(), Default: d})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.EnsureDefaultConfig(); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestNewManagerValidates(t *testing.T) {
	for name, o := range map[string]Options{
		"no conf dir":  {BinDirs: []string{"/x"}, CacheDir: "/c"},
		"no bin dirs":  {ConfDir: "/x", CacheDir: "/c"},
		"no cache dir": {ConfDir: "/x", BinDirs: []string{"/x"}},
	} {
		if _, err := NewManager(o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestPortMappings(t *testing.T) {
	got := portMappings([]PortMapping{
		{HostPort: 8080, ContainerPort: 80},
		{HostPort: 0, ContainerPort: 443}, // container port only: not published
		{HostPort: 5353, ContainerPort: 53, Protocol: "UDP", HostIP: "127.0.0.1"},
	})
	want := []portMapEntry{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	rt := runtimeConf(PodNetwork{ID: "abc", Name: "web", Namespace: "default", UID: "u1"}, "/run/ns")
	if _, ok := rt.CapabilityArgs["portMappings"]; ok {
		t.Error("portMappings capability set without mappings")
	}
	wantArgs := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "web"}, {"K8S_POD_INFRA_CONTAINER_ID", "abc"}, {"K8S_POD_UID", "u1"}}
	if diff := cmp.Diff(wantArgs, rt.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}
