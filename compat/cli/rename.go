package cli

import (
	"regexp"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dockerWord is the command name docker in help text: a whole word, not
// part of a path, host, image or file name (~/.docker, docker.io,
// docker/compose, docker-credential-pass, docker:dind stay).
var dockerWord = regexp.MustCompile(`(^|[^\w./:-])docker([^\w./:-]|$)`)

// berthText rewrites the command name docker in s to berth.
func berthText(s string) string {
	// Two passes: a match consumes the character after docker, so the
	// second of "docker docker" needs another.
	for range 2 {
		s = dockerWord.ReplaceAllString(s, "${1}berth${2}")
	}
	return s
}

// renameDocker rewrites docker to berth in the help of cmd and every
// command below it: descriptions, examples, the aliases docker lists
// ("docker container ls, docker ps") and flag usages. Usage lines need no
// rewrite: cobra builds them from the root command's name.
func renameDocker(cmd *cobra.Command) {
	cmd.Short = berthText(cmd.Short)
	cmd.Long = berthText(cmd.Long)
	cmd.Example = berthText(cmd.Example)
	cmd.Deprecated = berthText(cmd.Deprecated)
	for k, v := range cmd.Annotations {
		cmd.Annotations[k] = berthText(v)
	}
	rename := func(f *pflag.Flag) { f.Usage = berthText(f.Usage) }
	cmd.Flags().VisitAll(rename)
	cmd.PersistentFlags().VisitAll(rename)
	for _, c := range cmd.Commands() {
		renameDocker(c)
	}
}
