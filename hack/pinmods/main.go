// Command pinmods raises berth's go.mod requirements to those of a
// module that has no go.mod of its own, so that `go mod tidy` cannot pick
// the newest of everything for it: github.com/docker/cli keeps its
// requirements in vendor.mod. Only requirements below the other module's
// (or missing from berth's build list) are raised; nothing is lowered.
//
//	cd hack/pinmods && go run . [-n] $(go env GOMODCACHE)/github.com/docker/cli@VERSION/vendor.mod [skip-module...]
//
// then `go mod tidy` in the repository root. Modules named after the file
// are left alone (versions the module proxy does not serve). It is its
// own module so that berth's go.mod does not carry golang.org/x/mod.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

func main() {
	dry := flag.Bool("n", false, "print the requirements it would raise, change nothing")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: pinmods [-n] VENDOR.MOD [skip-module...]")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Args()[1:], *dry); err != nil {
		fmt.Fprintln(os.Stderr, "pinmods:", err)
		os.Exit(1)
	}
}

func run(vendorMod string, skip []string, dry bool) error {
	data, err := os.ReadFile(vendorMod)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(vendorMod, data, nil)
	if err != nil {
		return err
	}
	// The repository root is two levels up from this module.
	out, err := exec.Command("go", "-C", "../..", "list", "-m", "-f", "{{.Path}} {{.Version}}", "all").Output()
	if err != nil {
		return fmt.Errorf("go list -m all: %w", err)
	}
	current := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if path, version, ok := strings.Cut(line, " "); ok {
			current[path] = version
		}
	}
	var edits []string
	for _, r := range f.Require {
		if slices.Contains(skip, r.Mod.Path) {
			continue
		}
		have, ok := current[r.Mod.Path]
		if ok && semver.Compare(have, r.Mod.Version) >= 0 {
			continue
		}
		fmt.Printf("%s %s -> %s\n", r.Mod.Path, have, r.Mod.Version)
		edits = append(edits, "-require="+r.Mod.Path+"@"+r.Mod.Version)
	}
	if dry || len(edits) == 0 {
		return nil
	}
	cmd := exec.Command("go", append([]string{"-C", "../..", "mod", "edit"}, edits...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
