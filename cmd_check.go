package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/groupwire/groupwire/proxy"
)

// runCheck is `groupwire check`: validate the cluster file, print the plan
// of one member (or of every member) and check every certificate, key, CA
// and CRL file it names. Any error-level problem makes it fail.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	configPath := fs.String("config", envOr("GROUPWIRE_CONFIG", ""), "cluster file (env GROUPWIRE_CONFIG)")
	member := fs.String("member", "", "check only this member (default: every member)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" {
		return usageError{"check: --config is required"}
	}
	cfg, err := proxy.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	members := cfg.Members()
	if *member != "" {
		members = []string{*member}
	}
	failed := 0
	for i, name := range members {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		plan, err := cfg.Plan(name, memberEnv(name))
		if err != nil {
			fmt.Fprintln(stdout, err)
			failed++
			continue
		}
		proxy.FormatPlan(stdout, plan)
		for _, p := range proxy.CheckMaterial(plan, time.Now()) {
			fmt.Fprintf(stdout, "  %s\n", p)
			if p.Severity == proxy.SeverityError {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("check: %d problem(s) found", failed)
	}
	fmt.Fprintln(stdout, "\nok")
	return nil
}

// memberEnv is the process environment with GROUPWIRE_MEMBER set to
// member, so ${GROUPWIRE_MEMBER} expands to each member checked in turn.
func memberEnv(member string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		if key == "GROUPWIRE_MEMBER" {
			return member, true
		}
		return os.LookupEnv(key)
	}
}
