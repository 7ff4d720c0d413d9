package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultTOMLIsDefault(t *testing.T) {
	cfg, warnings, err := Parse([]byte(DefaultTOML))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	want := Default()
	want.Registry.Mirrors = map[string][]string{}
	if want.Registry.Insecure == nil {
		want.Registry.Insecure = []string{}
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("DefaultTOML differs from Default() (-want +got):\n%s", diff)
	}
	if w, err := cfg.Validate(); err != nil || len(w) != 0 {
		t.Errorf("defaults do not validate cleanly: %v %v", w, err)
	}
}

func TestParse(t *testing.T) {
	cfg, warnings, err := Parse([]byte(`
root = "/tmp/r"
bogus = 1
[registry.mirrors]
"docker.io" = ["http://127.0.0.1:5000"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != "/tmp/r" || cfg.State != "/run/berth" {
		t.Errorf("root/state = %q/%q", cfg.Root, cfg.State)
	}
	if got := cfg.Registry.Mirrors["docker.io"]; len(got) != 1 {
		t.Errorf("mirrors = %v", got)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "bogus") {
		t.Errorf("warnings = %v", warnings)
	}
	if cfg.ListenPath() != "/run/berth/berth.sock" {
		t.Errorf("ListenPath = %q", cfg.ListenPath())
	}
}

func TestValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"relative root":   func(c *Config) { c.Root = "var/lib" },
		"relative state":  func(c *Config) { c.State = "run" },
		"bad streaming":   func(c *Config) { c.Streaming.Address = "localhost" },
		"bad listen":      func(c *Config) { c.Listen = "tcp://1.2.3.4:5" },
		"bad driver":      func(c *Config) { c.CgroupDriver = "nope" },
		"unknown runtime": func(c *Config) { c.DefaultRuntime = "kata" },
		"zero downloads":  func(c *Config) { c.Image.MaxConcurrentDownloads = 0 },
		"bad level":       func(c *Config) { c.LogLevel = "loud" },
		"empty rt path":   func(c *Config) { c.Runtimes["runc"] = Runtime{} },
		"no cni bin dirs": func(c *Config) { c.CNI.BinDirs = nil },
	} {
		t.Run(name, func(t *testing.T) {
			c := Default()
			mutate(&c)
			if _, err := c.Validate(); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
	if _, _, err := Parse([]byte("root = [")); err == nil {
		t.Error("Parse accepted broken TOML")
	}
}
