package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/groupwire/groupwire/proxy/capture"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// runCapture is `groupwire capture`: it installs a drop-in member's capture
// rules in the current network namespace and exits, for an init container
// or an ExecStartPre that runs before the member, so that the member never
// runs a moment without them (the sidecar, with capture_rules: external,
// then only checks they are there). It needs CAP_NET_ADMIN.
func runCapture(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("capture", stderr)
	configPath := fs.String("config", envOr("GROUPWIRE_CONFIG", ""), "cluster file (env GROUPWIRE_CONFIG)")
	member := fs.String("member", envOr("GROUPWIRE_MEMBER", ""), "the member whose namespace this is (env GROUPWIRE_MEMBER)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" || *member == "" {
		return usageError{"capture: --config and --member are required"}
	}
	cfg, err := cluster.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	plan, err := cfg.Plan(*member, os.LookupEnv) // no key material: the init needs none
	if err != nil {
		return err
	}
	if plan.Capture == nil {
		return fmt.Errorf("capture: %s does not set capture: transparent", *configPath)
	}
	rules, err := capture.Resolve(ctx, plan.Capture, net.DefaultResolver)
	if err == nil {
		err = capture.Install(rules) // whoever owns them: this is the install step
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "capture: table inet %s installed for %s: %d captured addresses, %d guarded ports\n", capture.Table, *member, len(rules.Targets), len(rules.Guarded))
	return nil
}

// runPause is `groupwire pause`, a hidden command: it does nothing until
// SIGTERM or SIGINT, so that a compose service can own a network namespace
// (as a Kubernetes pod's pause container does) that the capture init, the
// member and the sidecar join.
func runPause(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return nil
}
