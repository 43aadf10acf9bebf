package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
)

// runDemo is `groupwire demo`: a three-member group on 127.0.0.11-13 with
// a throwaway CA, VERIFY_IDENTITY on two channels (each with its own CA),
// and messages crossing every pair until Ctrl-C.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	interval := fs.Duration("interval", 2*time.Second, "pause between rounds of messages")
	mode := fs.String("mode", "VERIFY_IDENTITY", "ssl_mode of both channels")
	dir := fs.String("dir", "", "folder for the demo's PKI and cluster file (default: a temp folder, removed on exit)")
	ipPrefix := fs.String("ip-prefix", "127.0.0", "first three octets of the members' loopback addresses (.11, .12, .13)")
	logOpts := addLogFlags(fs)
	// The demo's own lines show the traffic; sidecar logs only when
	// something goes wrong, unless asked.
	fs.Lookup("log-level").DefValue = "warn"
	_ = fs.Set("log-level", envOr("GROUPWIRE_LOG_LEVEL", "warn"))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logOpts.logger(stderr)
	if err != nil {
		return err
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "groupwire-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	g, err := localgroup.Prepare(localgroup.Options{Dir: *dir, Mode: *mode, ChannelCAs: true, IPPrefix: *ipPrefix})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(stdout, "groupwire demo: 3 members on %s.11-13, ssl_mode %s, cluster file %s\n", *ipPrefix, *mode, g.ConfigPath)
	running, err := g.Start(ctx, log)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer running.Stop()
	fmt.Fprintln(stdout, "sidecars up; members message each other through them (Ctrl-C stops)")
	if err := g.Demo(ctx, stdout, *interval); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintln(stdout, "demo stopped")
	return nil
}
