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

// ProcessConfig is one source of a container's process, in docker's
// terms: the image's config, or a request (the CRI's command and args are
// Entrypoint and Cmd here). An empty slice or string means "not set".
type ProcessConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir           string
}

// ProcessSources are what MergeProcess merges: the image's config under
// the front door's request.
type ProcessSources struct {
	Image, Request ProcessConfig
}

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
// An empty argv wraps errdefs.ErrInvalidArgument. The sources are not
// modified.
//
// envOut is the image env then the request env; a later KEY=value replaces
// an earlier one in its place, a bare KEY (no "=") in the request removes it
// (docker's rule). DefaultPathEnv is put first when PATH is not set.
// cwd is the request's working directory, else the image's, else "/".
func MergeProcess(s ProcessSources) (argv, envOut []string, cwd string, err error) {
	img, req := s.Image, s.Request
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if len(req.Entrypoint) > 0 {
		entrypoint, cmd = req.Entrypoint, nil
	}
	if len(req.Cmd) > 0 {
		cmd = req.Cmd
	}
	argv = append(slices.Clone(entrypoint), cmd...)
	if len(argv) == 0 {
		return nil, nil, "", fmt.Errorf("no command specified and the image has no entrypoint or cmd: %w", errdefs.ErrInvalidArgument)
	}

	envOut = mergeEnv(mergeEnv(nil, img.Env), req.Env)
	if !slices.ContainsFunc(envOut, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		envOut = append([]string{DefaultPathEnv}, envOut...)
	}

	cwd = req.WorkingDir
	if cwd == "" {
		cwd = img.WorkingDir
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
