package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// runSidecar is `groupwire run`: one member's sidecar until SIGTERM or
// SIGINT (drain). On SIGHUP it reloads the cluster file and every
// certificate; when the cluster file changes, the file.
func runSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	configPath := fs.String("config", envOr("GROUPWIRE_CONFIG", ""), "cluster file (env GROUPWIRE_CONFIG)")
	member := fs.String("member", envOr("GROUPWIRE_MEMBER", ""), "the member this sidecar runs beside (env GROUPWIRE_MEMBER)")
	pprofOn := fs.Bool("pprof", envOr("GROUPWIRE_PPROF", "") == "1", "serve the Go runtime's profiles on the admin listener under /debug/pprof/ (env GROUPWIRE_PPROF=1)")
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
	plan, err := loadPlan(*configPath, *member)
	if err != nil {
		return err
	}
	_, fixedProcs := os.LookupEnv("GOMAXPROCS") // the operator's choice stands
	if *pprofOn && plan.Admin == "" {
		return usageError{"run: --pprof serves the profiles on the admin listener, and this member has none (set admin in the cluster file)"}
	}
	sc, err := proxy.New(plan, proxy.Options{Logger: log, AdaptiveProcs: !fixedProcs, Pprof: *pprofOn})
	if err != nil {
		return fmt.Errorf("member %s: %w", *member, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	changed, stopWatch := watchConfig(ctx, *configPath, log)
	defer stopWatch()
	load := func() (*cluster.Plan, error) { return loadPlan(*configPath, *member) }
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	// A change seen before the sidecar serves is applied once it does, so
	// that no edit made after the file was first read is lost.
	ready, pending := sc.Ready(), false
	reload := func() {
		if ready != nil {
			pending = true
			return
		}
		_ = sc.ReloadConfig(load) // the sidecar logs and counts the outcome
	}
	for {
		select {
		case err := <-done:
			return err
		case <-ready:
			ready = nil
			if pending {
				reload()
			}
		case <-hup:
			reload()
			sc.Reload()
		case <-changed:
			reload()
		}
	}
}

// watchConfig watches the cluster file until ctx ends or stop is called
// (stop waits for the watch to end). A change is signalled on the channel;
// changes made before it is read are folded into one. The watch is set up
// when it returns.
func watchConfig(ctx context.Context, path string, log zerolog.Logger) (<-chan struct{}, func()) {
	changed := make(chan struct{}, 1)
	w, err := cluster.WatchFile(path, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		log.Error().Err(err).Msg("cluster file not watched; SIGHUP still reloads it")
		return changed, func() {}
	}
	watchCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(watchCtx); err != nil && watchCtx.Err() == nil {
			log.Error().Err(err).Msg("cluster file watch stopped; SIGHUP still reloads it")
		}
	}()
	return changed, func() { cancel(); <-done }
}

// loadPlan reads the cluster file at path, plans member and checks the
// key material as `groupwire check` does. Start and reload take this one
// path: check's errors refuse the plan (a sidecar never starts, nor
// reloads into, what check would fail), and its warnings (a key file
// others can read, a certificate about to expire) join the plan's, which
// the sidecar logs when it starts.
func loadPlan(path, member string) (*cluster.Plan, error) {
	cfg, err := cluster.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	plan, err := cfg.Plan(member, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	var errs []cluster.Problem
	for _, p := range cluster.CheckMaterial(plan, time.Now()) {
		if p.Severity == cluster.SeverityError {
			errs = append(errs, p)
		} else {
			plan.Warnings = append(plan.Warnings, p)
		}
	}
	if len(errs) > 0 {
		return nil, &cluster.ConfigError{File: path, Problems: errs}
	}
	return plan, nil
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
