package cluster

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/groupwire/groupwire/transport"
	"github.com/groupwire/groupwire/transport/tlsopt"
)

// FormatPlan writes the plan for humans, as `groupwire check` shows it:
// listeners, where each outbound listener leads, where inbound links are
// delivered, the effective TLS of each channel, timings and warnings.
// Write errors are ignored; w is written once.
func FormatPlan(w io.Writer, p *Plan) {
	var buf bytes.Buffer
	if p.Capture != nil {
		fmt.Fprintf(&buf, "member %s of group %s (drop-in: capture transparent)\n", p.Member, p.Group)
	} else {
		fmt.Fprintf(&buf, "member %s of group %s (local_ip %s)\n", p.Member, p.Group, p.LocalIP)
	}

	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nlisteners\n")
	fmt.Fprintf(tw, "  inbound\t%s\tlinks from peers%s\n", p.Listen, allInterfaces(p.Listen))
	if p.Admin != "" {
		fmt.Fprintf(tw, "  admin\t%s\tmetrics, health, status%s\n", p.Admin, allInterfaces(p.Admin))
	}
	if p.Capture != nil {
		formatCapture(tw, p)
	}
	for _, r := range p.Outbound {
		if r.Listen != "" {
			fmt.Fprintf(tw, "  outbound\t%s\t→ %s at %s (identity %s), channel %s\n",
				r.Listen, r.Peer, r.PeerAddress, r.PeerIdentity, r.Channel)
		}
	}
	fmt.Fprintf(tw, "\ndeliveries (inbound links to this member)\n")
	for _, d := range p.Inbound {
		fmt.Fprintf(tw, "  channel %s\t→ %s\n", d.Channel, d.Target)
	}
	tw.Flush()

	for _, ch := range p.Channels {
		formatChannel(&buf, p, ch)
	}

	fmt.Fprintf(&buf, "\ntimings\n  dial %s, handshake %s, dead peer %s, idle %s, half-closed %s; certificates re-checked every %s; close links on peer certificate expiry: %s; pairs probed every %s; drain on stop %s\n",
		p.Link.DialTimeout, p.Link.HandshakeTimeout, p.Link.PeerTimeout, idleName(p.IdleTimeout), idleName(p.HalfCloseTimeout), p.ReloadInterval, yesNo(p.CloseOnExpiry), idleName(p.ProbeInterval), p.DrainTimeout)
	if p.AllowNonLoopback {
		fmt.Fprintf(&buf, "  allow_non_loopback: local_ip may be a non-loopback address\n")
	}
	fmt.Fprintf(&buf, "\nlimits\n  %s\n", p.Limits)
	if p.Capture != nil {
		fmt.Fprintf(&buf, "  captured connections: any local process's (allowed_uids does not apply)\n")
	} else {
		fmt.Fprintf(&buf, "  outbound listeners: %s\n", uidsName(p.AllowedUIDs))
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(&buf, "\nwarnings\n")
		for _, wp := range p.Warnings {
			fmt.Fprintf(&buf, "  %s\n", wp)
		}
	}
	_, _ = w.Write(buf.Bytes())
}

// formatCapture writes drop-in mode's capture plan: the capture listener,
// what is captured and where it goes, and the ports closed to other hosts.
func formatCapture(tw io.Writer, p *Plan) {
	c := p.Capture
	fmt.Fprintf(tw, "  capture\t127.0.0.1:%d\tcapture: transparent; rules %s (nftables table inet groupwire; own sockets marked %#x)\n", c.Port, c.Rules, c.Mark)
	for _, t := range c.Targets {
		i := slices.IndexFunc(p.Outbound, func(r Route) bool { return r.Peer == t.Member && r.Channel == t.Channel })
		direct := ""
		if t.Open {
			direct = "; directly in plaintext while no sidecar answers there (onboarding window)"
		}
		fmt.Fprintf(tw, "  captured\t%s\t→ %s at %s (identity %s), channel %s%s\n",
			net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), t.Member, p.Outbound[i].PeerAddress, p.Outbound[i].PeerIdentity, t.Channel, direct)
	}
	fmt.Fprintf(tw, "  guarded\t%s\tchannel ports refused to other hosts (reached through the link port only)\n", portList(c.Guarded))
	if len(c.Open) > 0 {
		fmt.Fprintf(tw, "  open\t%s\tonboarding window (DISABLED accepted): the group's member addresses still reach these ports directly\n", portList(c.Open))
	}
}

// portList is ports as "4567, 4568".
func portList(ports []int) string {
	out := make([]string, len(ports))
	for i, port := range ports {
		out[i] = strconv.Itoa(port)
	}
	return strings.Join(out, ", ")
}

// formatChannel writes the effective TLS of one channel.
func formatChannel(buf *bytes.Buffer, p *Plan, ch ChannelPlan) {
	fmt.Fprintf(buf, "\nchannel %s: %s\n", ch.Name, ch.Mode)
	fmt.Fprintf(buf, "  %s\n", ch.Mode.Rules().Summary)
	if ch.AcceptModes != nil {
		fmt.Fprintf(buf, "  accept_modes %s: dials with %s, accepts and keeps links at any of them (a rolling ssl_mode change)\n", modeNames(ch.AcceptModes), ch.Mode)
	}
	if !ch.MaterialMode().UsesTLS() {
		return
	}
	tw := tabwriter.NewWriter(buf, 0, 4, 2, ' ', 0)
	for _, f := range tlsFields {
		if f.source == nil {
			continue
		}
		if val := *f.source(&ch.Source); val != "" {
			fmt.Fprintf(tw, "  %s\t%s\n", f.key, val)
		}
	}
	if ch.ACME != nil {
		a := ch.ACME
		fmt.Fprintf(tw, "  acme\tcertificate for %s from %s (storage %s)\n", a.Name, a.Directory, a.Storage)
		fmt.Fprintf(tw, "  \tpeers' serverAuth-only certificates accepted in the client role\n")
	}
	if sp := ch.SPIFFE; sp != nil {
		id := sp.ID
		if id == "" {
			id = "the default SVID"
		}
		fmt.Fprintf(tw, "  spiffe\tcertificate (%s) and trust bundle from the Workload API at %s\n", id, sp.Socket)
	}
	switch {
	case ch.Source.CRLFetch && ch.Source.CRLFetchFailOpen:
		fmt.Fprintf(tw, "  revocation\tCRLs fetched from the certificates' distribution points; fails open when none can be had\n")
	case ch.Source.CRLFetch:
		fmt.Fprintf(tw, "  revocation\tCRLs fetched from the certificates' distribution points; fails closed\n")
	case ch.Source.CRL == "" && ch.Source.CRLPath == "":
		fmt.Fprintf(tw, "  revocation\tnot checked (no ssl_crl or ssl_crlpath)\n")
	}
	fmt.Fprintf(tw, "  tls_version\t%s\n", versionRange(ch.Params.MinVersion, ch.Params.MaxVersion))
	fmt.Fprintf(tw, "  ssl_cipher\t%s\n", suiteList(ch.Params.CipherSuites, "AEAD only: ECDHE with AES-GCM or ChaCha20-Poly1305 (the default; ssl_cipher widens it)"))
	fmt.Fprintf(tw, "  tls_ciphersuites\t%s\n", suiteList(ch.Params.TLS13Suites, "all TLS 1.3 suites Go implements"))
	if len(ch.Params.CurvePreferences) > 0 {
		names := make([]string, len(ch.Params.CurvePreferences))
		for i, id := range ch.Params.CurvePreferences {
			names[i] = tlsopt.KeyExchangeName(id)
		}
		fmt.Fprintf(tw, "  tls_kex\t%s\n", strings.Join(names, ":"))
	}
	tw.Flush()
}

// suiteList names suites, or def when none are configured.
func suiteList(ids []uint16, def string) string {
	if len(ids) == 0 {
		return def
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = tlsopt.CipherSuiteName(id)
	}
	return strings.Join(names, ":")
}

// uidsName says which local users may use the outbound listeners.
func uidsName(uids []int) string {
	if uids == nil {
		return "any local process (allowed_uids not set)"
	}
	names := make([]string, len(uids))
	for i, u := range uids {
		names[i] = strconv.Itoa(u)
	}
	return "processes of uid " + strings.Join(names, ", ") + " only"
}

// versionRange renders MinVersion/MaxVersion in MySQL's spelling.
func versionRange(lo, hi uint16) string {
	if lo == 0 && hi == 0 {
		return "Go's default (TLSv1.2 to TLSv1.3)"
	}
	if lo == hi {
		return versionName(lo)
	}
	return versionName(lo) + " to " + versionName(hi)
}

// versionName spells a TLS version as MySQL's tls_version does.
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	case 0:
		return "Go's default"
	}
	return fmt.Sprintf("0x%04x", v)
}

// allInterfaces notes a listener bound to every interface.
func allInterfaces(addr string) string {
	if strings.HasPrefix(addr, ":") || strings.HasPrefix(addr, "0.0.0.0:") || strings.HasPrefix(addr, "[::]:") {
		return " (all interfaces)"
	}
	return ""
}

func idleName(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// modeNames spells modes as "DISABLED, VERIFY_IDENTITY".
func modeNames(modes []transport.Mode) string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = m.String()
	}
	return strings.Join(names, ", ")
}
