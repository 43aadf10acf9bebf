package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// runSidecar is `groupwire run`: one member's sidecar until SIGTERM or
// SIGINT (drain), reloading certificates on SIGHUP.
func runSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	configPath := fs.String("config", envOr("GROUPWIRE_CONFIG", ""), "cluster file (env GROUPWIRE_CONFIG)")
	member := fs.String("member", envOr("GROUPWIRE_MEMBER", ""), "the member this sidecar runs beside (env GROUPWIRE_MEMBER)")
	logOpts := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" || *member == "" {
		return usageError{"run: --config and --member are required"}
	}
	log, err := logOpts.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := cluster.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	plan, err := cfg.Plan(*member, os.LookupEnv)
	if err != nil {
		return err
	}
	sc, err := proxy.New(plan, proxy.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("member %s: %w", *member, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			log.Info().Msg("SIGHUP: reloading certificates")
			sc.Reload()
		}
	}
}

// logOptions are the logging flags shared by commands.
type logOptions struct {
	format *string
	level  *string
}

func addLogFlags(fs interface {
	String(name, value, usage string) *string
}) logOptions {
	return logOptions{
		format: fs.String("log-format", envOr("GROUPWIRE_LOG_FORMAT", "auto"), "json, console, or auto (console on a terminal)"),
		level:  fs.String("log-level", envOr("GROUPWIRE_LOG_LEVEL", "info"), "debug, info, warn or error"),
	}
}

func (o logOptions) logger(w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(*o.level)
	if err != nil || *o.level == "" {
		return zerolog.Logger{}, usageError{fmt.Sprintf("--log-level: unknown level %q", *o.level)}
	}
	switch *o.format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w}
	case "auto":
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			w = zerolog.ConsoleWriter{Out: w}
		}
	default:
		return zerolog.Logger{}, usageError{fmt.Sprintf("--log-format: want json, console or auto, got %q", *o.format)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
