package cluster

import (
	"strings"
	"testing"

	"github.com/groupwire/groupwire/certs"
)

// TestPlanSPIFFE: a tls.spiffe block replaces every file key of its
// channels, with the member's SPIFFE ID as the SVID's ID; a channel that
// sets its own files keeps them; conflicts, a bad socket and a malformed
// SPIFFE ID are problems at their keys.
func TestPlanSPIFFE(t *testing.T) {
	const file = `
group: g
tls:
  ssl_mode: VERIFY_IDENTITY
  spiffe: {socket: "unix:///run/spire/${AGENT}.sock"}
  ssl_crl_fetch: true
channels:
  group: {}
  files:
    tls: {ssl_ca: ca.pem, ssl_cert: f.pem, ssl_key: f-key.pem}
members:
  node-1: {address: "node-1:24900", identity: "spiffe://prod.example/galera/node-1", ports: {group: 1001, files: 1003}}
  node-2: {address: "node-2:24900", identity: "spiffe://prod.example/galera/node-2", ports: {group: 2001, files: 2003}}
`
	cfg, err := ParseConfig([]byte(file), "/etc/groupwire/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cfg.Plan("node-1", func(k string) (string, bool) { return map[string]string{"AGENT": "agent"}[k], k == "AGENT" })
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]ChannelPlan{}
	for _, ch := range plan.Channels {
		byName[ch.Name] = ch
	}
	want := certs.SPIFFEConfig{Socket: "unix:///run/spire/agent.sock", ID: "spiffe://prod.example/galera/node-1"}
	if got := byName["group"].SPIFFE; got == nil || *got != want {
		t.Errorf("group SPIFFE = %+v, want %+v", got, want)
	}
	if src := byName["group"].Source; src != (certs.Source{CRLFetch: true}) {
		t.Errorf("group Source = %+v, want no file", src)
	}
	if f := byName["files"]; f.SPIFFE != nil || f.Source.Cert != "/etc/groupwire/f.pem" {
		t.Errorf("files channel: SPIFFE %+v, Source %+v; want its own files", f.SPIFFE, f.Source)
	}

	open := "group: g\ntls: {ssl_mode: VERIFY_CA, ssl_crl_fetch: true, ssl_crl_fetch_fail_open: true, spiffe: {socket: \"unix:///a.sock\"}}\nchannels: {group: {}}\n" +
		"members:\n  n1: {address: \"n1:24900\", ports: {group: 1}}\n  n2: {address: \"n2:24900\", ports: {group: 2}}\n"
	cfg, err = ParseConfig([]byte(open), "/x/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err = cfg.Plan("n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range plan.Warnings {
		warned = warned || (w.Path == "tls.ssl_crl_fetch_fail_open" && strings.Contains(w.Msg, "groupwire_crl_fail_open_total"))
	}
	if !warned || !plan.Channels[0].Source.CRLFetchFailOpen {
		t.Errorf("fail open: warnings %+v, Source %+v; want a warning at tls.ssl_crl_fetch_fail_open", plan.Warnings, plan.Channels[0].Source)
	}

	for _, tc := range []struct{ tls, identity, want string }{
		{`{ssl_mode: VERIFY_CA, ssl_ca: ca.pem, spiffe: {socket: "unix:///a.sock"}}`, "n1", "tls.spiffe: set together with tls.ssl_ca"},
		{`{ssl_mode: VERIFY_CA, spiffe: {socket: "/run/agent.sock"}}`, "n1", `tls.spiffe.socket: "/run/agent.sock" is not a Workload API address`},
		{`{ssl_mode: VERIFY_IDENTITY, spiffe: {socket: "unix:///a.sock"}}`, "spiffe://Bad Domain/x", "members.n1.identity: \"spiffe://Bad Domain/x\" is not a valid SPIFFE ID"},
		{`{ssl_mode: VERIFY_CA, ssl_crl_fetch: maybe, spiffe: {socket: "unix:///a.sock"}}`, "n1", `tls.ssl_crl_fetch: "maybe" is not true or false`},
		{`{ssl_mode: VERIFY_CA, ssl_crl_fetch_fail_open: true, spiffe: {socket: "unix:///a.sock"}}`, "n1", "tls.ssl_crl_fetch_fail_open: set, but ssl_crl_fetch is not true"},
	} {
		bad := "group: g\ntls: " + tc.tls + "\nchannels: {group: {}}\nmembers:\n  n1: {address: \"n1:24900\", identity: \"" + tc.identity + "\", ports: {group: 1}}\n  n2: {address: \"n2:24900\", ports: {group: 2}}\n"
		cfg, err := ParseConfig([]byte(bad), "/x/cluster.yaml")
		if err == nil {
			_, err = cfg.Plan("n1", nil)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.tls, err, tc.want)
		}
	}
}
