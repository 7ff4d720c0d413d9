// Command berthd is berth's daemon: the CRI endpoint and the Docker Engine
// API over one store.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-runtime/berth/config"
	"github.com/berth-runtime/berth/daemon"
	"github.com/berth-runtime/berth/internal/version"
)

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "config" && os.Args[2] == "default" {
		fmt.Print(config.DefaultTOML)
		return
	}
	fs := flag.NewFlagSet("berthd", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: berthd [flags]\n       berthd config default   print the documented default config\n\nflags:\n")
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", config.DefaultPath, "config file")
	root := fs.String("root", "", "persistent state directory (overrides the config's root)")
	state := fs.String("state", "", "runtime state directory (overrides the config's state)")
	listen := fs.String("listen", "", "CRI endpoint unix:///PATH (overrides the config's listen)")
	dockerListen := fs.String("docker-listen", "", "Engine API endpoint unix:///PATH (overrides the config's docker.listen)")
	level := fs.String("log-level", "", "debug, info, warn or error (overrides the config's log_level)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println("berthd", version.Version)
		return
	}

	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, warnings, err := config.Load(*cfgPath, explicit)
	if err != nil {
		fatal(err)
	}
	for flagVal, field := range map[*string]*string{root: &cfg.Root, state: &cfg.State, listen: &cfg.Listen, dockerListen: &cfg.Docker.Listen, level: &cfg.LogLevel} {
		if *flagVal != "" {
			*field = *flagVal
		}
	}
	more, err := cfg.Validate()
	if err != nil {
		fatal(err)
	}
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(log)
	for _, w := range append(warnings, more...) {
		log.Warn(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, cfg, log, nil); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "berthd:", err)
	os.Exit(1)
}
