package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/proxy/capture"
	"github.com/groupwire/groupwire/proxy/cluster"
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
	cfg, err := cluster.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	members := cfg.Members()
	if *member != "" {
		members = []string{*member}
	}
	failed := checkMembers(cfg, members, stdout)
	if failed > 0 {
		return fmt.Errorf("check: %d problem(s) found", failed)
	}
	fmt.Fprintln(stdout, "\nok")
	return nil
}

// checkMembers prints the plan and material problems of each member and
// returns how many errors it printed. A problem of the file itself is found
// again in every member's plan; it is printed and counted once.
func checkMembers(cfg *cluster.Config, members []string, stdout io.Writer) int {
	failed := 0
	printed := map[string]bool{}
	for i, name := range members {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		plan, err := cfg.Plan(name, os.LookupEnv)
		if err != nil {
			failed += printPlanError(stdout, name, err, printed)
			continue
		}
		cluster.FormatPlan(stdout, plan)
		for _, p := range cluster.CheckMaterial(plan, time.Now()) {
			fmt.Fprintf(stdout, "  %s\n", p)
			if p.Severity == cluster.SeverityError {
				failed++
			}
		}
		failed += printCaptureRules(stdout, plan)
		failed += printDistributionPoints(stdout, plan)
		failed += printSPIFFE(stdout, plan)
	}
	return failed
}

// printDistributionPoints fetches, for every channel with ssl_crl_fetch,
// the CRL of each distribution point of the member's own chain, and says
// whether it answers with a CRL its issuer signed. It returns the errors
// it printed: an unanswered point is an error unless the channel fails
// open.
func printDistributionPoints(w io.Writer, plan *cluster.Plan) int {
	failed := 0
	for _, ch := range plan.Channels {
		if !ch.Source.CRLFetch {
			continue
		}
		chain, err := ownChain(ch.Source)
		if err != nil {
			fmt.Fprintf(w, "  channels.%s.tls.ssl_crl_fetch: cannot list distribution points: %v\n", ch.Name, err)
			failed++
			continue
		}
		fmt.Fprintf(w, "\nCRL distribution points (channel %s)\n", ch.Name)
		for i := 0; i+1 < len(chain); i++ {
			failed += printDistributionPoint(w, ch, chain[i], chain[i+1])
		}
	}
	return failed
}

// ownChain is the member's own certificate chain, leaf to root, as its
// peers verify it.
func ownChain(src certs.Source) ([]*x509.Certificate, error) {
	snap, err := certs.Load(certs.Source{CA: src.CA, CAPath: src.CAPath, Cert: src.Cert, Key: src.Key})
	if err != nil {
		return nil, err
	}
	if snap.Cert == nil || snap.Roots == nil {
		return nil, errors.New("needs ssl_cert and ssl_ca (or ssl_capath)")
	}
	var sent []*x509.Certificate
	for _, der := range snap.Cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		sent = append(sent, c)
	}
	return snap.VerifyPeer(sent, []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, time.Now())
}

// printDistributionPoint fetches the CRL of each distribution point of c
// once and prints what came back; it returns 1 when none of them gave a
// usable CRL and the channel fails closed.
func printDistributionPoint(w io.Writer, ch cluster.ChannelPlan, c, issuer *x509.Certificate) int {
	urls := certs.DistributionPoints(c)
	if len(urls) == 0 {
		fmt.Fprintf(w, "  %s: names no http:// distribution point; its CRL must come from ssl_crl or ssl_crlpath\n", c.Subject)
		return 0
	}
	good := false
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(context.Background(), certs.DefaultCRLFetchTimeout)
		info, err := certs.FetchCRL(ctx, u, issuer, certs.CRLFetchOptions{})
		cancel()
		if err != nil {
			fmt.Fprintf(w, "  %s: %s: %v\n", c.Subject, u, err)
			continue
		}
		good = true
		fmt.Fprintf(w, "  %s: %s: answers: CRL of %s, %d revoked, nextUpdate %s\n", c.Subject, u, info.Issuer, info.Revoked, info.NextUpdate.UTC().Format(time.RFC3339))
	}
	if good || ch.Source.CRLFetchFailOpen {
		return 0
	}
	fmt.Fprintf(w, "  channels.%s.tls.ssl_crl_fetch: no distribution point of %s answers: peers will refuse this member's certificate (fail closed)\n", ch.Name, c.Subject)
	return 1
}

// printCaptureRules prints, in drop-in mode, the nftables rules the member's
// sidecar puts in force (or, with capture_rules: external, that the
// operator installs), with the peers' names resolved here, and says when
// this process could not install them. It returns the errors it printed.
func printCaptureRules(w io.Writer, plan *cluster.Plan) int {
	if plan.Capture == nil {
		return 0
	}
	rules, err := capture.Resolve(context.Background(), plan.Capture, net.DefaultResolver)
	if err != nil {
		fmt.Fprintf(w, "  capture: %v\n", err)
		return 1
	}
	fmt.Fprintf(w, "\ncapture rules (nft -f; capture_rules: %s)\n%s", plan.Capture.Rules, rules.Text())
	for _, ch := range plan.Channels {
		if ch.OnboardingOpen() {
			fmt.Fprintf(w, "  warning: channel %s: onboarding window open (DISABLED accepted): the group's members without a sidecar are reached, and reach this member, directly in plaintext; close it with a reload once every member has its sidecar (README, \"Securing a running group\")\n", ch.Name)
		}
	}
	if plan.Capture.Rules == cluster.CaptureRulesManaged && !capture.HasNetAdmin() {
		fmt.Fprintf(w, "  warning: capture: this process lacks CAP_NET_ADMIN; `groupwire run` needs it in the member's network namespace to install these rules (or set capture_rules: external and install them yourself)\n")
	}
	return 0
}

// printPlanError prints the problems that stop member's plan, leaving out
// those already printed for an earlier member, and returns how many it
// printed.
func printPlanError(w io.Writer, member string, err error, printed map[string]bool) int {
	var ce *cluster.ConfigError
	if !errors.As(err, &ce) {
		fmt.Fprintf(w, "member %s: %v\n", member, err)
		return 1
	}
	var fresh []cluster.Problem
	for _, p := range ce.Problems {
		if !printed[p.String()] {
			printed[p.String()] = true
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		fmt.Fprintf(w, "member %s: no plan (the problems above)\n", member)
		return 0
	}
	fmt.Fprintf(w, "member %s: %v\n", member, &cluster.ConfigError{File: ce.File, Problems: fresh})
	return len(fresh)
}

// printSPIFFE connects, for every channel with tls.spiffe, to the
// Workload API and prints what it hands out: the SVID's SPIFFE ID and
// expiry, and the trust bundle. It returns the errors it printed: a
// socket that does not answer with a usable SVID within 5 s is one.
func printSPIFFE(w io.Writer, plan *cluster.Plan) int {
	failed := 0
	for _, ch := range plan.Channels {
		if ch.SPIFFE == nil {
			continue
		}
		fmt.Fprintf(w, "\nSPIFFE Workload API (channel %s, %s)\n", ch.Name, ch.SPIFFE.Socket)
		store, err := certs.NewStore("channel "+ch.Name, certs.Source{})
		if err != nil {
			fmt.Fprintf(w, "  %v\n", err)
			failed++
			continue
		}
		src := certs.NewSPIFFE(*ch.SPIFFE, store)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = src.Fetch(ctx, nil)
		cancel()
		if err != nil {
			fmt.Fprintf(w, "  channels.%s.tls.spiffe: %v\n", ch.Name, err)
			failed++
			continue
		}
		info, _ := src.Info()
		fmt.Fprintf(w, "  SVID %s, expires %s\n  trust domain %s: %d CA(s): %s\n", info.ID, info.NotAfter.UTC().Format(time.RFC3339),
			info.TrustDomain, len(info.Authorities), strings.Join(info.Authorities, "; "))
	}
	return failed
}
