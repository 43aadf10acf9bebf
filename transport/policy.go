package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport/tlsopt"
)

// ALPNPrefix starts the ALPN protocol name that carries a link's channel,
// "gw1/<channel>", so the acceptor picks that channel's credentials before
// the handshake completes.
const ALPNPrefix = "gw1/"

// ALPN returns the ALPN protocol name of a channel.
func ALPN(channel string) string { return ALPNPrefix + channel }

// Policy is the effective TLS policy of one channel on one member: the
// ssl_mode, where its key material comes from, and the protocol limits. The
// tls.Configs built from it read the credential store on every handshake, so
// a reloaded certificate, CA or CRL applies to the next handshake at once.
type Policy struct {
	Channel string
	Mode    Mode // what this member dials with
	// AcceptModes are the modes this member takes from dialing peers and
	// keeps live links at (accept_modes, for a rolling ssl_mode change);
	// nil means Mode alone. A TLS handshake is checked at the weakest TLS
	// mode listed, and the mode the peer's HELLO names is then checked in
	// full, so no link is ever weaker than the weakest mode listed.
	AcceptModes []Mode
	Creds       *certs.Store // required when Mode or an accept mode uses TLS
	Params      TLSParams
	// ServerAuthClients accepts a peer certificate carrying serverAuth but
	// not clientAuth in the client role, as ACME-issued certificates are.
	ServerAuthClients bool
}

// TLSParams are a channel's protocol limits, as tls_version, ssl_cipher,
// tls_ciphersuites and tls_kex give them (package tlsopt parses those).
// The zero value means Go's defaults, except that TLS 1.2 offers AEAD suites
// only (tlsopt.DefaultTLS12Suites).
type TLSParams struct {
	MinVersion   uint16   // zero: TLS 1.2
	MaxVersion   uint16   // zero: TLS 1.3
	CipherSuites []uint16 // TLS 1.2 suites; nil: tlsopt.DefaultTLS12Suites (AEAD only)
	TLS13Suites  []uint16 // allowed TLS 1.3 suites; nil: all
	// CurvePreferences lists the key exchanges; nil: Go's default, which
	// puts the hybrid post-quantum X25519MLKEM768 first.
	CurvePreferences []tls.CurveID
}

// cipherSuites are the TLS 1.2 suites the channel offers and accepts:
// ssl_cipher's, or the AEAD-only default.
func (p *Policy) cipherSuites() []uint16 {
	if p.Params.CipherSuites != nil {
		return p.Params.CipherSuites
	}
	return tlsopt.DefaultTLS12Suites()
}

func (p *Policy) minVersion() uint16 {
	if p.Params.MinVersion == 0 {
		return tls.VersionTLS12
	}
	return p.Params.MinVersion
}

// Accepted returns the modes the policy accepts: AcceptModes, or Mode.
func (p *Policy) Accepted() []Mode {
	if len(p.AcceptModes) == 0 {
		return []Mode{p.Mode}
	}
	return p.AcceptModes
}

// Accepts reports whether a link in mode m is acceptable on the channel.
func (p *Policy) Accepts(m Mode) bool {
	if len(p.AcceptModes) == 0 {
		return m == p.Mode
	}
	return slices.Contains(p.AcceptModes, m)
}

// NeedsTLS reports whether the channel runs any TLS: its own mode, or one
// it accepts, so it needs key material.
func (p *Policy) NeedsTLS() bool {
	return p.Mode.UsesTLS() || slices.ContainsFunc(p.AcceptModes, Mode.UsesTLS)
}

// acceptedName is what the channel runs, for refusals: the mode, or
// "accept_modes DISABLED, VERIFY_IDENTITY" during a change.
func (p *Policy) acceptedName() string {
	if len(p.AcceptModes) == 0 {
		return p.Mode.String()
	}
	return "accept_modes " + modeList(p.AcceptModes)
}

// handshakeMode is the mode a TLS handshake on the accepting side is
// checked at: the weakest TLS mode accepted. HELLO's mode is checked in
// full afterwards (Acceptor.checkMember).
func (p *Policy) handshakeMode() Mode {
	var tlsModes []Mode
	for _, m := range p.Accepted() {
		if m.UsesTLS() {
			tlsModes = append(tlsModes, m)
		}
	}
	return Weakest(tlsModes)
}

// Validate reports a policy that cannot work, naming the channel.
func (p *Policy) Validate() error {
	if !p.Mode.Valid() {
		return fmt.Errorf("channel %s: invalid ssl_mode %d", p.Channel, p.Mode)
	}
	for _, m := range p.Accepted() {
		if !m.Valid() {
			return fmt.Errorf("channel %s: invalid accept mode %d", p.Channel, m)
		}
	}
	if !p.Accepts(p.Mode) {
		return fmt.Errorf("channel %s: accept_modes must include ssl_mode %s", p.Channel, p.Mode)
	}
	if !p.NeedsTLS() {
		return nil
	}
	var snap *certs.Snapshot
	if p.Creds != nil {
		snap = p.Creds.Current()
	}
	strictest := Strictest(p.Accepted()) // ssl_mode among them, as checked above
	if missing := strictest.MissingMaterial(snap != nil && snap.Cert != nil, snap != nil && snap.Roots != nil); missing != "" {
		return fmt.Errorf("channel %s: %s", p.Channel, missing)
	}
	if p.Params.MaxVersion == tls.VersionTLS12 {
		// Limited to TLS 1.2, the suites must fit this member's key, or
		// every handshake fails.
		if err := tlsopt.SuitesMatchKey(p.cipherSuites(), snap.Cert.Leaf.PublicKey); err != nil {
			return fmt.Errorf("channel %s: %w", p.Channel, err)
		}
	}
	return nil
}

// clientConfig is the dialing side's TLS configuration under snap, with
// sessions cached in cache (nil: no resumption).
func (p *Policy) clientConfig(snap *certs.Snapshot, identity string, cache tls.ClientSessionCache) *tls.Config {
	cfg := p.baseConfig()
	cfg.NextProtos = []string{ALPN(p.Channel)}
	if !parseHostIP(identity) && !IsSPIFFEID(identity) {
		cfg.ServerName = identity
	}
	// Chains are verified in VerifyConnection against the current snapshot,
	// which also runs on resumed sessions, so revocation and CA rotation
	// reach them too.
	cfg.InsecureSkipVerify = true
	cfg.ClientSessionCache = cache
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if snap.Cert == nil {
			return &tls.Certificate{}, nil
		}
		return snap.Cert, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return p.verifyServer(cs, identity)
	}
	return cfg
}

// serverConfig is the accepting side's TLS configuration under snap.
func (p *Policy) serverConfig(snap *certs.Snapshot, identities []string) *tls.Config {
	cfg := p.baseConfig()
	cfg.NextProtos = []string{ALPN(p.Channel)}
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if snap.Cert == nil {
			return nil, fmt.Errorf("channel %s: no ssl_cert configured", p.Channel)
		}
		return snap.Cert, nil
	}
	cfg.ClientAuth = p.handshakeMode().Rules().ClientAuth
	bindTickets(cfg, snap.Digest)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return p.verifyClient(cs, identities)
	}
	return cfg
}

func (p *Policy) baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       p.minVersion(),
		MaxVersion:       p.Params.MaxVersion,
		CipherSuites:     p.cipherSuites(),
		CurvePreferences: p.Params.CurvePreferences,
		// Group messages are small and latency-bound; bulk transfers
		// reach full-size records without the slow start anyway.
		DynamicRecordSizingDisabled: true,
	}
}

// ErrNoPeerCertificate is returned when a peer presents no certificate
// where the ssl_mode requires one.
var ErrNoPeerCertificate = errors.New("peer presented no certificate")

// verifyServer checks the accepting peer's certificate on the dialing side.
func (p *Policy) verifyServer(cs tls.ConnectionState, identity string) error {
	if err := p.checkSuite(cs); err != nil {
		return err
	}
	if !p.Mode.VerifiesChain() {
		return nil
	}
	leaf, err := p.verifyChain(p.Mode, cs, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	if p.Mode.VerifiesIdentity() && !NameMatches(leaf, identity) {
		return &NameMismatchError{Channel: p.Channel, Cert: certName(leaf), Want: identity}
	}
	return nil
}

// verifyClient checks the dialing peer's certificate on the accepting
// side, during the handshake, at the handshake mode.
func (p *Policy) verifyClient(cs tls.ConnectionState, identities []string) error {
	if err := p.checkSuite(cs); err != nil {
		return err
	}
	mode := p.handshakeMode()
	if !mode.VerifiesChain() {
		return nil
	}
	usage := x509.ExtKeyUsageClientAuth
	leaf, err := p.verifyChain(mode, cs, usage)
	if err != nil {
		return err
	}
	if mode.VerifiesIdentity() && !slices.ContainsFunc(identities, func(id string) bool { return NameMatches(leaf, id) }) {
		return &NameMismatchError{Channel: p.Channel, Cert: certName(leaf)}
	}
	return nil
}

// verifyChain verifies the peer's chain against the current snapshot, for
// mode (named in errors).
func (p *Policy) verifyChain(mode Mode, cs tls.ConnectionState, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("channel %s: %s: %w", p.Channel, mode, ErrNoPeerCertificate)
	}
	usages := []x509.ExtKeyUsage{usage}
	if usage == x509.ExtKeyUsageClientAuth && p.ServerAuthClients {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	if _, err := p.Creds.Current().VerifyPeer(cs.PeerCertificates, usages, time.Now()); err != nil {
		return nil, certificateError{fmt.Errorf("channel %s: %s: %w", p.Channel, mode, err)}
	}
	return cs.PeerCertificates[0], nil
}

// Reverify checks a live link in mode against the policy again (after a
// CA or CRL reload, a change of the channel's settings, or when the peer's
// certificate may have expired): the mode must still be accepted, the TLS
// version and suite it negotiated still allowed, and its peer's
// certificates must pass the current snapshot. cs is the link's TLS state,
// nil for a plaintext link; client says the peer is in the client role.
func (p *Policy) Reverify(mode Mode, cs *tls.ConnectionState, client bool) error {
	if !p.Accepts(mode) {
		return fmt.Errorf("channel %s: %w: %s (accepted: %s)", p.Channel, ErrModeNotAccepted, mode, modeList(p.Accepted()))
	}
	if cs == nil {
		return nil
	}
	if err := p.reverifyParams(*cs); err != nil {
		return err
	}
	if !mode.VerifiesChain() {
		return nil
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	_, err := p.verifyChain(mode, *cs, usage)
	return err
}

// reverifyParams checks a live TLS link's negotiated version and cipher
// suite against the policy's tls_version, ssl_cipher and
// tls_ciphersuites: a link the policy would no longer negotiate fails.
func (p *Policy) reverifyParams(cs tls.ConnectionState) error {
	if max := p.Params.MaxVersion; cs.Version < p.minVersion() || (max != 0 && cs.Version > max) {
		return fmt.Errorf("channel %s: %w: the link runs %s, tls_version no longer allows it", p.Channel, ErrParamsNotAllowed, tls.VersionName(cs.Version))
	}
	if cs.Version < tls.VersionTLS13 && !slices.Contains(p.cipherSuites(), cs.CipherSuite) {
		return fmt.Errorf("channel %s: %w: the link runs %s, ssl_cipher no longer allows it", p.Channel, ErrParamsNotAllowed, tls.CipherSuiteName(cs.CipherSuite))
	}
	if err := p.checkSuite(cs); err != nil {
		return fmt.Errorf("%w: %w", ErrParamsNotAllowed, err)
	}
	return nil
}

// ErrParamsNotAllowed is why a live link is cut when its channel's
// tls_version or cipher settings stop allowing what it negotiated.
var ErrParamsNotAllowed = errors.New("TLS parameters no longer allowed")

// ErrModeNotAccepted is why a live link is cut when its channel stops
// accepting the mode it runs at.
var ErrModeNotAccepted = errors.New("ssl_mode no longer accepted")

// modeList spells modes as "DISABLED, VERIFY_IDENTITY".
func modeList(modes []Mode) string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = m.String()
	}
	return strings.Join(names, ", ")
}

// checkSuite enforces tls_ciphersuites, which Go cannot configure for TLS
// 1.3: a handshake that negotiated a suite outside the list is refused.
func (p *Policy) checkSuite(cs tls.ConnectionState) error {
	if cs.Version != tls.VersionTLS13 || p.Params.TLS13Suites == nil || slices.Contains(p.Params.TLS13Suites, cs.CipherSuite) {
		return nil
	}
	return fmt.Errorf("channel %s: tls_ciphersuites does not allow %s", p.Channel, tls.CipherSuiteName(cs.CipherSuite))
}
