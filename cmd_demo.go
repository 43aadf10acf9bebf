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
// and messages crossing every pair until Ctrl-C. It shows the table of
// pairs as the sidecars see them: redrawn in place on a terminal, a line
// per interval elsewhere, and a line when a pair goes down (with why) or
// comes back. --revoke-after revokes mysql-3's certificates while the group
// runs.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	interval := fs.Duration("interval", time.Second, "how often the table is shown and messages cross every pair")
	revokeAfter := fs.Duration("revoke-after", 0, "revoke mysql-3's certificates after this long (0: never)")
	mode := fs.String("mode", "VERIFY_IDENTITY", "ssl_mode of both channels")
	dir := fs.String("dir", "", "folder for the demo's PKI and cluster file (default: a temp folder, removed on exit)")
	ipPrefix := fs.String("ip-prefix", "127.0.0", "first three octets of the members' loopback addresses (.11, .12, .13)")
	logOpts := addLogFlags(fs)
	// The demo's table shows the pairs and why one is down; the sidecars
	// log only errors, unless asked.
	fs.Lookup("log-level").DefValue = "error"
	_ = fs.Set("log-level", envOr("GROUPWIRE_LOG_LEVEL", "error"))
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
	g, err := localgroup.Prepare(localgroup.Options{Dir: *dir, Mode: *mode, ChannelCAs: true, IPPrefix: *ipPrefix,
		ExtraYAML: "probe_interval: 500ms\n"})
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
	traffic := &demoTraffic{}
	go traffic.run(ctx, g, *interval)
	showPairs(ctx, stdout, g, running, traffic, *interval, *revokeAfter)
	fmt.Fprintln(stdout, "demo stopped")
	return nil
}

// showPairs shows the pair table every interval until ctx ends, and
// revokes mysql-3's certificates once revokeAfter has passed.
func showPairs(ctx context.Context, out io.Writer, g *localgroup.Group, r *localgroup.Running, traffic *demoTraffic, interval, revokeAfter time.Duration) {
	start := time.Now()
	f, isFile := out.(*os.File)
	tty := isFile && isTerminal(f) // redraw in place on a terminal
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var revoke <-chan time.Time
	if revokeAfter > 0 {
		revoke = time.After(revokeAfter)
	}
	before := pairStates{}
	var note string // shown under the table until the next redraw clears the screen
	for {
		select {
		case <-ctx.Done():
			return
		case <-revoke:
			note = revokeDemoMember(g, "mysql-3")
			fmt.Fprintln(out, note)
		case <-tick.C:
			now := readPairs(r)
			ok, fail := traffic.totals()
			if tty {
				fmt.Fprint(out, "\033[H\033[2J") // home and clear: redraw in place
				writeTable(out, g, now, ok, fail, time.Since(start))
				if note != "" {
					fmt.Fprintln(out, note)
				}
			} else {
				writeChanges(out, before, now)
				writeLine(out, g, now, ok, fail, time.Since(start))
			}
			before = now
		}
	}
}

// revokeDemoMember revokes member's certificate on every channel's CA and
// says what it did.
func revokeDemoMember(g *localgroup.Group, member string) string {
	for _, ch := range g.Channels {
		if err := g.CAs[ch].Revoke(member); err != nil {
			return fmt.Sprintf("revoke %s on %s: %v", member, ch, err)
		}
	}
	return fmt.Sprintf("revoked %s's certificates: its pairs go down, the others keep echoing", member)
}
