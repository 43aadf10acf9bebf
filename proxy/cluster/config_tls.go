package cluster

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport"
	"github.com/groupwire/groupwire/transport/tlsopt"
)

// tlsField is one string key of a TLS block: its name, its value, and for
// the file keys where the plan keeps the resolved path.
type tlsField struct {
	key    string
	get    func(*TLSOptions) *string
	source func(*certs.Source) *string // nil for keys that name no file
}

// tlsFields lists the string keys of a TLS block, in the order they are
// checked and printed. It is the one list: ${VAR} expansion, inheritance
// from the top-level tls and the plan printer all walk it, and
// TestTLSFieldsCoverTLSOptions holds it against TLSOptions by reflection.
// The other keys (accept_modes, acme, spiffe) are handled each on its own.
var tlsFields = []tlsField{
	{"ssl_mode", func(o *TLSOptions) *string { return &o.SSLMode }, nil},
	{"ssl_ca", func(o *TLSOptions) *string { return &o.SSLCA }, func(s *certs.Source) *string { return &s.CA }},
	{"ssl_capath", func(o *TLSOptions) *string { return &o.SSLCAPath }, func(s *certs.Source) *string { return &s.CAPath }},
	{"ssl_cert", func(o *TLSOptions) *string { return &o.SSLCert }, func(s *certs.Source) *string { return &s.Cert }},
	{"ssl_key", func(o *TLSOptions) *string { return &o.SSLKey }, func(s *certs.Source) *string { return &s.Key }},
	{"ssl_crl", func(o *TLSOptions) *string { return &o.SSLCRL }, func(s *certs.Source) *string { return &s.CRL }},
	{"ssl_crlpath", func(o *TLSOptions) *string { return &o.SSLCRLPath }, func(s *certs.Source) *string { return &s.CRLPath }},
	{"ssl_cipher", func(o *TLSOptions) *string { return &o.SSLCipher }, nil},
	{"tls_ciphersuites", func(o *TLSOptions) *string { return &o.TLSCiphersuites }, nil},
	{"tls_version", func(o *TLSOptions) *string { return &o.TLSVersion }, nil},
	{"tls_kex", func(o *TLSOptions) *string { return &o.TLSKex }, nil},
	{"ssl_crl_fetch", func(o *TLSOptions) *string { return &o.SSLCRLFetch }, nil},
	{"ssl_crl_fetch_fail_open", func(o *TLSOptions) *string { return &o.SSLCRLFetchFailOpen }, nil},
}

// mergeTLS fills every unset key of the channel's options from the top-level
// ones. from maps each key to the path it was taken from ("tls.ssl_ca" or
// "channels.NAME.tls.ssl_ca"); unset keys map to the channel's path.
func mergeTLS(channel string, top, ch TLSOptions) (eff TLSOptions, from map[string]string) {
	from = make(map[string]string, len(tlsFields))
	chPath := "channels." + channel + ".tls."
	for _, f := range tlsFields {
		v := *f.get(&ch)
		from[f.key] = chPath + f.key
		if v == "" && *f.get(&top) != "" {
			v = *f.get(&top)
			from[f.key] = "tls." + f.key
		}
		*f.get(&eff) = v
	}
	eff.AcceptModes, from["accept_modes"] = ch.AcceptModes, chPath+"accept_modes"
	if ch.AcceptModes == nil && top.AcceptModes != nil {
		eff.AcceptModes, from["accept_modes"] = top.AcceptModes, "tls.accept_modes"
	}
	return eff, from
}

// planChannel merges and checks the TLS options of one channel (already
// expanded) and parses them into a ChannelPlan. Relative file paths are
// resolved against dir. Keys whose expansion failed (failed reports their
// paths) are already reported and are not checked again.
func planChannel(name string, top, ch TLSOptions, dir string, failed map[string]bool, ps *problems) ChannelPlan {
	eff, from := mergeTLS(name, top, ch)
	broken := func(keys ...string) bool {
		for _, k := range keys {
			if failed["tls."+k] || failed["channels."+name+".tls."+k] {
				return true
			}
		}
		return false
	}
	cp := ChannelPlan{Name: name, Options: eff}
	modePath := "channels." + name + ".tls.ssl_mode"
	if broken("ssl_mode") {
		// reported where it failed to expand
	} else if eff.SSLMode == "" {
		ps.add(modePath, "not set (set it in tls or in the channel)")
	} else if mode, err := transport.ParseMode(eff.SSLMode); err != nil {
		ps.add(from["ssl_mode"], "%v", err)
	} else {
		cp.Mode = mode
	}
	rules := cp.Mode.Rules()
	if rules.Risk != "" {
		ps.warn(modePath, "%s: channel %s %s", rules.Name, name, rules.Risk)
	}
	cp.AcceptModes = planAcceptModes(cp.Mode, eff.AcceptModes, from["accept_modes"], ps)
	if strictest := cp.MaterialMode(); strictest.Valid() {
		rules = strictest.Rules()
	}
	if !rules.TLS { // DISABLED, or not set or unknown
		if !cp.Mode.Valid() { // only the mode-independent options can be checked
			parseTLSKnobs(&cp, from, ps)
		}
		return cp
	}
	cp.SPIFFE = planSPIFFE(name, top, ch, &eff, from, ps)
	haveCA := eff.SSLCA != "" || eff.SSLCAPath != "" || broken("ssl_ca", "ssl_capath") || cp.SPIFFE != nil
	if missing := cp.MaterialMode().MissingMaterial(true, haveCA); missing != "" {
		ps.add("channels."+name+".tls", "%s (in tls or in the channel)", missing)
	}
	if cp.SPIFFE == nil {
		cp.ACME = planACME(name, top, ch, &eff, dir, failed, ps)
	}
	if cp.ACME == nil && cp.SPIFFE == nil && !broken("ssl_cert", "ssl_key") {
		checkKeyPair(name, cp.MaterialMode(), eff, from, ps)
	}
	cp.Options = eff
	parseTLSKnobs(&cp, from, ps)
	for _, f := range tlsFields {
		if f.source != nil {
			*f.source(&cp.Source) = resolvePath(dir, *f.get(&eff))
		}
	}
	planCRLFetch(&cp, from, ps)
	return cp
}

// planCRLFetch parses ssl_crl_fetch and ssl_crl_fetch_fail_open.
func planCRLFetch(cp *ChannelPlan, from map[string]string, ps *problems) {
	o := cp.Options
	cp.Source.CRLFetch = parseBool(o.SSLCRLFetch, from["ssl_crl_fetch"], ps)
	cp.Source.CRLFetchFailOpen = parseBool(o.SSLCRLFetchFailOpen, from["ssl_crl_fetch_fail_open"], ps)
	switch {
	case cp.Source.CRLFetchFailOpen && !cp.Source.CRLFetch:
		ps.add(from["ssl_crl_fetch_fail_open"], "set, but ssl_crl_fetch is not true: there is no fetch to fail open")
	case cp.Source.CRLFetchFailOpen:
		ps.warn(from["ssl_crl_fetch_fail_open"], "a peer whose CRL cannot be fetched, or is past its nextUpdate, is let through (counted in groupwire_crl_fail_open_total); a revoked peer is still refused")
	}
	if cp.Source.CRLFetch && !cp.MaterialMode().VerifiesChain() {
		ps.warn(from["ssl_crl_fetch"], "has no effect: no accepted ssl_mode verifies the peer's chain (VERIFY_CA or VERIFY_IDENTITY)")
	}
}

// parseBool parses a true/false key (at path); "" is false.
func parseBool(v, path string, ps *problems) bool {
	switch strings.ToLower(v) {
	case "", "false":
		return false
	case "true":
		return true
	}
	ps.add(path, "%q is not true or false", v)
	return false
}

// planAcceptModes parses accept_modes (at path): known modes, each once,
// ssl_mode among them. A list of ssl_mode alone is the same as none.
func planAcceptModes(mode transport.Mode, names []string, path string, ps *problems) []transport.Mode {
	if names == nil {
		return nil
	}
	var out []transport.Mode
	for i, n := range names {
		m, err := transport.ParseMode(n)
		switch {
		case err != nil:
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		case slices.Contains(out, m):
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%s is listed twice", m)
		default:
			out = append(out, m)
		}
	}
	if mode.Valid() && !slices.Contains(out, mode) && len(out) == len(names) {
		ps.add(path, "must list the channel's ssl_mode %s: the member dials with it, so it must accept it too", mode)
	}
	for _, m := range out {
		if r := m.Rules(); m != mode && r.Risk != "" && len(out) > 1 {
			ps.warn(path, "accepts %s during a rolling change (a link at it %s); remove it once every member has moved", r.Name, r.Risk)
		}
	}
	if len(out) <= 1 {
		return nil
	}
	return out
}

// checkKeyPair requires ssl_cert and ssl_key together: links are mutual
// TLS, so each sidecar shows its own certificate in every TLS mode.
func checkKeyPair(channel string, mode transport.Mode, eff TLSOptions, from map[string]string, ps *problems) {
	switch {
	case eff.SSLCert == "" && eff.SSLKey == "":
		ps.add("channels."+channel+".tls", "%s", mode.MissingMaterial(false, true))
	case eff.SSLKey == "":
		ps.add(strings.TrimSuffix(from["ssl_cert"], "ssl_cert")+"ssl_key", "not set, but ssl_cert is (%s)", from["ssl_cert"])
	case eff.SSLCert == "":
		ps.add(strings.TrimSuffix(from["ssl_key"], "ssl_key")+"ssl_cert", "not set, but ssl_key is (%s)", from["ssl_key"])
	}
}

// parseTLSKnobs parses tls_version, ssl_cipher, tls_ciphersuites and
// tls_kex.
func parseTLSKnobs(cp *ChannelPlan, from map[string]string, ps *problems) {
	o := cp.Options
	if o.TLSVersion != "" {
		lo, hi, err := tlsopt.ParseTLSVersion(o.TLSVersion)
		if err != nil {
			ps.add(from["tls_version"], "%s", trimKey(err, "tls_version"))
		}
		cp.Params.MinVersion, cp.Params.MaxVersion = lo, hi
	}
	if o.SSLCipher != "" {
		sel, err := tlsopt.ResolveCipherList(o.SSLCipher)
		if err != nil {
			ps.add(from["ssl_cipher"], "%s", trimKey(err, "ssl_cipher"))
		}
		for _, w := range sel.Warnings() {
			ps.warn(from["ssl_cipher"], "%s", w)
		}
		cp.Params.CipherSuites = sel.Suites
		cp.DroppedCiphers = sel.Dropped
	}
	if o.TLSCiphersuites != "" {
		suites, err := tlsopt.ParseTLS13Ciphersuites(o.TLSCiphersuites)
		if err != nil {
			ps.add(from["tls_ciphersuites"], "%s", trimKey(err, "tls_ciphersuites"))
		}
		cp.Params.TLS13Suites = suites
		if suites != nil && !slices.Contains(suites, tls.TLS_AES_128_GCM_SHA256) && (cp.Params.MaxVersion == 0 || cp.Params.MaxVersion >= tls.VersionTLS13) {
			ps.warn(from["tls_ciphersuites"], "Go cannot choose TLS 1.3 suites: between sidecars it negotiates TLS_AES_128_GCM_SHA256 on CPUs with AES instructions "+
				"(TLS_CHACHA20_POLY1305_SHA256 without), and a handshake outside this list is refused; to pin suites, use tls_version: TLSv1.2 with ssl_cipher")
		}
	}
	if o.TLSKex != "" {
		groups, err := tlsopt.ParseKeyExchange(o.TLSKex)
		if err != nil {
			ps.add(from["tls_kex"], "%s", trimKey(err, "tls_kex"))
		}
		cp.Params.CurvePreferences = groups
	}
}

// resolvePath makes a relative path relative to dir; "" stays "".
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// trimKey drops a leading "key: " from an error message, since the problem's
// path already names the key.
func trimKey(err error, key string) string {
	return strings.TrimPrefix(err.Error(), key+": ")
}
