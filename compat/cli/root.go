package cli

import (
	"fmt"
	"os"
	"slices"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/commands"
	"github.com/docker/cli/cli/context/store"
	cliflags "github.com/docker/cli/cli/flags"
	"github.com/docker/cli/cli/version"
	composecmd "github.com/docker/compose/v5/cmd/compose"
	"github.com/docker/compose/v5/cmd/prompt"
	"github.com/docker/compose/v5/pkg/compose"
	"github.com/spf13/cobra"
)

// unserved are docker's commands for what berthd does not serve: swarm
// mode (berth is a node runtime; Kubernetes orchestrates), managed
// plugins, and checkpoints (until berthd has them).
// bake needs the buildx plugin, which berth does not run.
var unserved = []string{"swarm", "node", "service", "stack", "secret", "config", "plugin", "checkpoint", "bake"}

// berthShort are descriptions of docker's commands that name Docker where
// berth is meant.
var berthShort = map[string]string{
	"version": "Show the berth version information",
	"system":  "Manage berth",
	"inspect": "Return low-level information on berth objects",
}

// newRootCommand is docker's root command as cmd/docker builds it, named
// berth: docker's global flags (-H, --context, --config, -D, --tls...),
// its help and usage templates, every docker command berthd serves,
// `berth compose`, and berth's own commands. The options it returns are
// the global flags' values, which run completes with berthd's default
// host.
func newRootCommand(dockerCli *command.DockerCli) (*dockercli.TopLevelCommand, *cliflags.ClientOptions) {
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return command.ShowHelp(dockerCli.Err())(cmd, args)
			}
			return fmt.Errorf("berth: unknown command: berth %s\n\nRun 'berth --help' for more information", args[0])
		},
		Version:               version.Version,
		DisableFlagsInUseLine: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDescriptions: os.Getenv("DOCKER_CLI_DISABLE_COMPLETION_DESCRIPTION") != "",
		},
	}
	root.CompletionOptions.SetDefaultShellCompDirective(cobra.ShellCompDirectiveNoFileComp)
	root.SetIn(dockerCli.In())
	root.SetOut(dockerCli.Out())
	root.SetErr(dockerCli.Err())

	opts, _ := dockercli.SetupRootCommand(root)
	root.SetVersionTemplate("berth version {{.Version}}\n")
	_ = root.RegisterFlagCompletionFunc("context", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		names, _ := store.Names(dockerCli.ContextStore())
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions(
		[]string{"debug", "info", "warn", "error", "fatal", "panic"}, cobra.ShellCompDirectiveNoFileComp))
	root.Flags().BoolP("version", "v", false, "Print version information and quit")

	commands.AddCommands(root, dockerCli)
	for _, c := range root.Commands() {
		if slices.Contains(unserved, c.Name()) {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(composeCommand(dockerCli))
	renameDocker(root)
	for _, c := range root.Commands() {
		if s, ok := berthShort[c.Name()]; ok {
			c.Short = s
		}
	}
	// berth's own text, after the rewrite: it means docker.
	root.Short = "Run containers on berth with docker's commands"
	root.Annotations["additionalHelp"] = "berth takes docker's commands and flags; docker's guides apply: https://docs.docker.com/go/guides/"
	root.AddCommand(newPodsCommand(dockerCli))
	addPsPods(root, dockerCli)

	return dockercli.NewTopLevelCommand(root, dockerCli, opts, root.Flags()), opts
}

// composeCommand is Compose v5's command tree on berth's own DockerCli,
// so -H, --context and DOCKER_HOST apply to it as to every other command.
func composeCommand(dockerCli command.Cli) *cobra.Command {
	backend := &composecmd.BackendOptions{
		Options: []compose.Option{compose.WithPrompt(prompt.NewPrompt(dockerCli.In(), dockerCli.Out()).Confirm)},
	}
	cmd := composecmd.RootCommand(dockerCli, backend)
	// Flag errors exit 1 with compose's message, as the compose plugin's.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return dockercli.StatusError{StatusCode: 1, Status: err.Error()}
	})
	return cmd
}
