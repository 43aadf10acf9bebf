package transport

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Mode is a group_replication_ssl_mode value. The zero Mode means "not
// set" (a channel then inherits the group's); it is not a valid mode.
type Mode uint8

// The four ssl modes, in MySQL's order.
const (
	Disabled       Mode = iota + 1 // plain TCP
	Required                       // TLS, no peer checks (encryption only)
	VerifyCA                       // TLS, peer chain checked against ssl_ca/ssl_capath and CRLs
	VerifyIdentity                 // VerifyCA, and the certificate must name the peer
)

// ModeRules is what one ssl_mode asks of a link, in both directions: the
// one table from which the TLS configurations, the acceptor's and the
// dialer's checks, the cluster file's requirements, `check` and the plan
// printer all read. Code asks a mode's rules; it never compares modes by
// their order.
type ModeRules struct {
	Name string // MySQL's spelling
	TLS  bool   // links run TLS
	// ClientAuth is what the accepting side asks of the dialing side's
	// certificate during the handshake.
	ClientAuth tls.ClientAuthType
	// VerifyChain: both sides check the peer's chain to ssl_ca/ssl_capath,
	// its validity dates and the CRLs, at every handshake and again after
	// every reload.
	VerifyChain bool
	// VerifyIdentity: the certificate must name the peer (the dialer
	// checks the member it dialed, the acceptor the member HELLO names).
	VerifyIdentity bool
	// Summary is the plan printer's one line about the mode.
	Summary string
	// Risk is said as a warning at start, "" for the verifying modes.
	Risk string
}

var modeRules = [...]ModeRules{
	Disabled: {
		Name:    "DISABLED",
		Summary: "plaintext between sidecars; other tls options are ignored",
		Risk:    "crosses the network in plaintext, unauthenticated",
	},
	Required: {
		Name: "REQUIRED", TLS: true, ClientAuth: tls.RequestClientCert,
		Summary: "encrypts, verifies no peer",
		Risk:    "encrypts but verifies no peer (use VERIFY_CA or VERIFY_IDENTITY)",
	},
	VerifyCA: {
		Name: "VERIFY_CA", TLS: true, ClientAuth: tls.RequireAnyClientCert, VerifyChain: true,
		Summary: "verifies the peer's chain to the CA, in both directions",
	},
	VerifyIdentity: {
		Name: "VERIFY_IDENTITY", TLS: true, ClientAuth: tls.RequireAnyClientCert, VerifyChain: true, VerifyIdentity: true,
		Summary: "verifies the peer's chain to the CA and that it names the peer, in both directions",
	},
}

// MissingMaterial says what mode m needs that a channel lacks, worded
// for the cluster file: its own certificate and key (links are mutual, so
// every TLS mode shows one), or a CA to verify peers with. It returns ""
// when nothing is missing. The cluster file check and Policy.Validate both
// ask it, so the rule and its words live here once.
func (m Mode) MissingMaterial(haveCertAndKey, haveCA bool) string {
	r := m.Rules()
	switch {
	case r.TLS && !haveCertAndKey:
		return fmt.Sprintf("ssl_mode %s needs ssl_cert and ssl_key (each sidecar shows its certificate to the other)", r.Name)
	case r.VerifyChain && !haveCA:
		return fmt.Sprintf("ssl_mode %s needs ssl_ca or ssl_capath", r.Name)
	}
	return ""
}

// Modes lists the four modes in MySQL's order.
func Modes() []Mode { return []Mode{Disabled, Required, VerifyCA, VerifyIdentity} }

// Rules returns the mode's rules; the zero ModeRules for a value that is
// not a mode.
func (m Mode) Rules() ModeRules {
	if int(m) < len(modeRules) {
		return modeRules[m]
	}
	return ModeRules{}
}

// String returns MySQL's spelling, such as "VERIFY_IDENTITY", or
// "Mode(n)" for a value that is not a mode.
func (m Mode) String() string {
	if m.Valid() {
		return m.Rules().Name
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool { return m.Rules().Name != "" }

// UsesTLS reports whether links in mode m run TLS.
func (m Mode) UsesTLS() bool { return m.Rules().TLS }

// VerifiesChain reports whether mode m checks the peer's certificate chain.
func (m Mode) VerifiesChain() bool { return m.Rules().VerifyChain }

// VerifiesIdentity reports whether mode m checks that the peer's
// certificate names the peer.
func (m Mode) VerifiesIdentity() bool { return m.Rules().VerifyIdentity }

// ParseMode parses an ssl_mode value, case-insensitively, ignoring
// surrounding spaces.
func ParseMode(s string) (Mode, error) {
	t := strings.TrimSpace(s)
	for _, m := range Modes() {
		if strings.EqualFold(t, m.Rules().Name) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown ssl_mode %q (want DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)", s)
}

// checks counts what mode m checks of a link: TLS, the chain, the name.
// Strictest and Weakest rank modes by it, never by their numbering.
func (m Mode) checks() int {
	r, n := m.Rules(), 0
	for _, on := range []bool{r.TLS, r.VerifyChain, r.VerifyIdentity} {
		if on {
			n++
		}
	}
	return n
}

// Strictest returns the mode of modes that checks the most; zero for none.
func Strictest(modes []Mode) Mode {
	var out Mode
	for _, m := range modes {
		if out == 0 || m.checks() > out.checks() {
			out = m
		}
	}
	return out
}

// Weakest returns the mode of modes that checks the least; zero for none.
func Weakest(modes []Mode) Mode {
	var out Mode
	for _, m := range modes {
		if out == 0 || m.checks() < out.checks() {
			out = m
		}
	}
	return out
}
