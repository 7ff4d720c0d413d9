package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

func TestBerthText(t *testing.T) {
	for in, want := range map[string]string{
		"docker run -it busybox":                    "berth run -it busybox",
		"$ docker ps\n$ docker container ls":        "$ berth ps\n$ berth container ls",
		"docker container ls, docker ps":            "berth container ls, berth ps",
		"`docker`":                                  "`berth`",
		"docker docker":                             "berth berth",
		"docker":                                    "berth",
		"docker.io/library/busybox":                 "docker.io/library/busybox",
		"~/.docker/config.json":                     "~/.docker/config.json",
		"docker/compose and docker-credential-pass": "docker/compose and docker-credential-pass",
		"docker:dind":                               "docker:dind",
		"Docker Hub":                                "Docker Hub",
		"https://docs.docker.com/go/formatting/":    "https://docs.docker.com/go/formatting/",
	} {
		if got := berthText(in); got != want {
			t.Errorf("berthText(%q) = %q, want %q", in, got, want)
		}
	}
}

// tree is berth's command tree as Main builds it.
func tree(t *testing.T) *cobra.Command {
	t.Helper()
	dockerCli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	tcmd, _ := newRootCommand(dockerCli)
	root, _, err := tcmd.HandleGlobalFlags()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestTree(t *testing.T) {
	root := tree(t)
	if root.Name() != "berth" {
		t.Errorf("root is %q", root.Name())
	}
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	for _, gone := range unserved {
		if slices.Contains(names, gone) {
			t.Errorf("berth %s is there; berthd does not serve it", gone)
		}
	}
	for _, want := range []string{"run", "ps", "compose", "pods", "build", "manifest", "context", "system", "volume", "network", "image", "container"} {
		if !slices.Contains(names, want) {
			t.Errorf("no berth %s", want)
		}
	}
	for _, path := range [][]string{{"ps"}, {"container", "ls"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Flags().Lookup("pods") == nil {
			t.Errorf("berth %s has no --pods", strings.Join(path, " "))
		}
	}
	if c, _, err := root.Find([]string{"compose", "up"}); err != nil || c.CommandPath() != "berth compose up" {
		t.Errorf("compose up: %v, %v", c, err)
	}
}

// TestHelpSaysBerth: no description, example or alias list in the tree
// tells the user to type docker.
func TestHelpSaysBerth(t *testing.T) {
	command := regexp.MustCompile(`(^|[\s$"'` + "`" + `(,])docker\s+[a-z]`)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for what, text := range map[string]string{"Short": c.Short, "Long": c.Long, "Example": c.Example, "aliases": c.Annotations["aliases"]} {
			if m := command.FindString(text); m != "" {
				t.Errorf("%s %s says %q", c.CommandPath(), what, m)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(tree(t))
}
