package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// errPairDown makes `groupwire status` exit 1 after printing its table.
var errPairDown = errors.New("status: a pair is down")

// runStatus is `groupwire status`: one member's pair table from its admin
// endpoint, as a table or JSON. It exits 1 when any pair is down, so that
// scripts and probes can use it as a check.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	admin := fs.String("admin", "", "the member's admin address, host:port")
	configPath := fs.String("config", envOr("GROUPWIRE_CONFIG", ""), "cluster file, to find --member's admin address (env GROUPWIRE_CONFIG)")
	member := fs.String("member", envOr("GROUPWIRE_MEMBER", ""), "the member (env GROUPWIRE_MEMBER)")
	output := fs.String("o", "table", "output: table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usageError{fmt.Sprintf("status: -o %q: want table or json", *output)}
	}
	addr, err := adminAddress(*admin, *configPath, *member)
	if err != nil {
		return err
	}
	st, raw, err := fetchStatus(ctx, addr)
	if err != nil {
		return err
	}
	if *output == "json" {
		_, _ = stdout.Write(raw)
	} else {
		printPairs(stdout, st, time.Now())
	}
	for _, p := range st.Peers {
		if !p.Up {
			return errPairDown
		}
	}
	return nil
}

// adminAddress is --admin, or --member's admin address in --config.
func adminAddress(admin, configPath, member string) (string, error) {
	switch {
	case admin != "":
		return admin, nil
	case configPath == "" || member == "":
		return "", usageError{"status: --admin, or --config and --member, are required"}
	}
	cfg, err := cluster.LoadConfig(configPath)
	if err != nil {
		return "", err
	}
	plan, err := cfg.Plan(member, os.LookupEnv)
	if err != nil {
		return "", err
	}
	if plan.Admin == "" {
		return "", fmt.Errorf("status: member %s has no admin listener in %s (set admin)", member, configPath)
	}
	return plan.Admin, nil
}

// fetchStatus reads /status from the admin endpoint at addr.
func fetchStatus(ctx context.Context, addr string) (proxy.Status, []byte, error) {
	var st proxy.Status
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, nil, fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return st, nil, fmt.Errorf("status: read %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, nil, fmt.Errorf("status: %s answered %s", addr, resp.Status)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("status: %s: %w", addr, err)
	}
	return st, raw, nil
}

// printPairs writes the pair table a person reads at a glance.
func printPairs(w io.Writer, st proxy.Status, now time.Time) {
	fmt.Fprintf(w, "member %s of group %s\n", st.Member, st.Group)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tCHANNEL\tSTATE\tSETUP\tLINKS\tTO PEER\tTO MEMBER\tPROBED\tLAST ERROR")
	for _, p := range st.Peers {
		state, setup := "up", fmt.Sprintf("%.1fms", p.SetupMS)
		switch {
		case p.Path == proxy.PathDirect:
			state, setup = "DIRECT", "-" // plaintext to the peer member: the onboarding window
		case !p.Up:
			state, setup = "DOWN", "-"
		}
		probed := "never"
		if !p.LastProbe.IsZero() {
			probed = now.Sub(p.LastProbe).Round(100*time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Peer, p.Channel, state, setup, p.LiveLinks,
			proxy.ByteSize(p.BytesToPeer), proxy.ByteSize(p.BytesToMember), probed, p.LastError)
	}
	tw.Flush()
}
