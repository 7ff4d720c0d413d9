// Package cli is the berth command: docker's own command tree
// (github.com/docker/cli as a library, not a fork) under the name berth,
// Compose v5 as `berth compose` on the same client, and berth's own
// commands. It is only a client of berthd's Engine API socket: every
// command goes through the API, never to berthd's files, so what works
// here works for the real docker CLI too and the other way round.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/errdefs"
	dockercli "github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/debug"
	"github.com/docker/cli/cli/version"
	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"

	berthversion "github.com/berth-runtime/berth/internal/version"
)

// DefaultHost is berthd's Engine API socket at its default state
// directory. berth talks to it when neither -H, DOCKER_HOST nor a docker
// context names another engine; docker's own default (/var/run/docker.sock)
// is dockerd's.
const DefaultHost = "unix:///run/berth/docker.sock"

// Main runs berth with the process's arguments and environment and
// returns its exit code: a container's exit code for run/start/wait, 125
// for a usage error, 128+N after signal N, as docker does.
func Main() int {
	classicBuilderByDefault()
	ctx, stop := notifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	dockerCli, err := command.NewDockerCli(command.WithBaseContext(ctx))
	if err == nil {
		logrus.SetOutput(dockerCli.Err())
		otel.SetErrorHandler(debug.OTELErrorHandler)
		err = run(ctx, dockerCli, os.Args[1:])
	}
	if err == nil {
		return 0
	}
	// A command cut short by a signal exits 128+N, silently.
	if se, ok := context.Cause(ctx).(signalError); ok {
		err = se
	}
	if !errdefs.IsCanceled(err) && err.Error() != "" {
		fmt.Fprintln(os.Stderr, err)
	}
	return exitCode(err)
}

// classicBuilderByDefault sets DOCKER_BUILDKIT=0 unless the user set it:
// without buildx, the CLI and compose must use the classic builder API
// (POST /build), which berthd serves, and compose decides BuildKit from
// this variable alone.
func classicBuilderByDefault() {
	if _, set := os.LookupEnv("DOCKER_BUILDKIT"); !set {
		os.Setenv("DOCKER_BUILDKIT", "0")
	}
}

func init() {
	// The client half of `berth version` and `berth info` names berth.
	version.PlatformName = "berth"
	version.Version = berthversion.Version
}

// run builds the command tree, parses the global flags, connects the
// client (to DefaultHost unless told otherwise) and runs the command.
func run(ctx context.Context, dockerCli *command.DockerCli, args []string) error {
	tcmd, opts := newRootCommand(dockerCli)
	tcmd.SetArgs(args)
	cmd, args, err := tcmd.HandleGlobalFlags()
	if err != nil {
		return err
	}
	if err := tcmd.Initialize(
		command.WithEnableGlobalMeterProvider(),
		command.WithEnableGlobalTracerProvider(),
		command.WithContextResolver(func(c *command.DockerCli) (string, error) {
			if defaultsToBerthd(c.CurrentContext(), opts.Hosts, os.Getenv(client.EnvOverrideHost)) {
				opts.Hosts = []string{DefaultHost}
			}
			return "", nil
		}),
	); err != nil {
		return err
	}
	if mp, ok := dockerCli.MeterProvider().(command.MeterProvider); ok {
		defer mp.Shutdown(context.WithoutCancel(ctx))
	}
	go forceExitAfter3Signals(ctx, dockerCli.Err())
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// defaultsToBerthd reports whether the client should talk to DefaultHost:
// the default context is in use (no --context, DOCKER_CONTEXT or
// config.json currentContext chose another) and neither -H nor
// DOCKER_HOST names a host.
func defaultsToBerthd(contextName string, hosts []string, dockerHost string) bool {
	return contextName == command.DefaultContextName && len(hosts) == 0 && dockerHost == ""
}

// signalError is the cause of a context cancelled by a termination
// signal, so that the exit code can say which one.
type signalError struct{ sig os.Signal }

func (signalError) Error() string { return "" }

// notifyContext is signal.NotifyContext whose cause names the signal.
func notifyContext(ctx context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-ctx.Done():
		case sig := <-ch:
			cancel(signalError{sig})
		}
		signal.Stop(ch)
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// forceExitAfter3Signals exits when two more termination signals follow
// the one that cancelled ctx, for a command that does not stop on
// cancellation (docker's behaviour).
func forceExitAfter3Signals(ctx context.Context, stderr io.Writer) {
	<-ctx.Done()
	if _, ok := context.Cause(ctx).(signalError); !ok {
		return
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	<-ch
	fmt.Fprint(stderr, "\ngot 3 SIGTERM/SIGINTs, forcefully exiting\n")
	os.Exit(1)
}

// exitCode is docker's: a StatusError's code, 128+N for signal N, else 1.
func exitCode(err error) int {
	var se signalError
	if errors.As(err, &se) {
		if s, ok := se.sig.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 1
	}
	var st dockercli.StatusError
	if errors.As(err, &st) && st.StatusCode != 0 {
		return st.StatusCode
	}
	return 1
}
