package oci

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DefaultPathEnv is PATH when neither the image nor the request sets one,
// as in docker and containerd.
const DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MergeProcess merges an image config (entrypoint, cmd, env, workdir) with a
// request's command, args, env and workdir as the kubelet and docker expect
// (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#notes):
//
//	image entrypoint/cmd | request command/args | argv
//	[/ep-1] [foo bar]    | -       -            | [/ep-1 foo bar]
//	[/ep-1] [foo bar]    | [/ep-2] -            | [/ep-2]
//	[/ep-1] [foo bar]    | -       [zoo boo]    | [/ep-1 zoo boo]
//	[/ep-1] [foo bar]    | [/ep-2] [zoo boo]    | [/ep-2 zoo boo]
//
// An empty slice means "not set". An empty argv wraps
// errdefs.ErrInvalidArgument.
//
// envOut is the image env then the request env; a later KEY=value replaces
// an earlier one in its place, a bare KEY (no "=") in the request removes it
// (docker's rule). DefaultPathEnv is put first when PATH is not set.
// cwd is workdir, else imgWorkdir, else "/".
func MergeProcess(imgEntrypoint, imgCmd, imgEnv []string, imgWorkdir string, command, args, env []string, workdir string) (argv, envOut []string, cwd string, err error) {
	entrypoint, cmd := imgEntrypoint, imgCmd
	if len(command) > 0 {
		entrypoint, cmd = command, nil
	}
	if len(args) > 0 {
		cmd = args
	}
	argv = append(slices.Clone(entrypoint), cmd...)
	if len(argv) == 0 {
		return nil, nil, "", fmt.Errorf("no command specified and the image has no entrypoint or cmd: %w", errdefs.ErrInvalidArgument)
	}

	envOut = mergeEnv(mergeEnv(nil, imgEnv), env)
	if !slices.ContainsFunc(envOut, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		envOut = append([]string{DefaultPathEnv}, envOut...)
	}

	cwd = workdir
	if cwd == "" {
		cwd = imgWorkdir
	}
	if cwd == "" {
		cwd = "/"
	}
	return argv, envOut, cwd, nil
}

// mergeEnv applies overrides to base: KEY=value replaces KEY in place or is
// appended, a bare KEY removes it.
func mergeEnv(base, overrides []string) []string {
	out := slices.Clone(base)
	for _, e := range overrides {
		key, _, hasValue := strings.Cut(e, "=")
		i := slices.IndexFunc(out, func(o string) bool {
			k, _, _ := strings.Cut(o, "=")
			return k == key
		})
		switch {
		case !hasValue && i >= 0:
			out = slices.Delete(out, i, i+1)
		case !hasValue:
		case i >= 0:
			out[i] = e
		default:
			out = append(out, e)
		}
	}
	return out
}
