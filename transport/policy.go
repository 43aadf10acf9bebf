package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
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
	Mode    Mode
	Creds   *certs.Store // required unless Mode is Disabled
	Params  TLSParams
	// ServerAuthClients accepts a peer certificate carrying serverAuth but
	// not clientAuth in the client role, as ACME-issued certificates are.
	ServerAuthClients bool
	// Now returns the time used for validity checks; nil means time.Now.
	Now func() time.Time
}

// TLSParams are a channel's protocol limits, as tls_version, ssl_cipher,
// tls_ciphersuites and tls_kex give them (package tlsopt parses those).
// The zero value means Go's defaults.
type TLSParams struct {
	MinVersion   uint16   // zero: TLS 1.2
	MaxVersion   uint16   // zero: TLS 1.3
	CipherSuites []uint16 // TLS 1.2 suites; nil: Go's defaults
	TLS13Suites  []uint16 // allowed TLS 1.3 suites; nil: all
	// CurvePreferences lists the key exchanges; nil: Go's default, which
	// puts the hybrid post-quantum X25519MLKEM768 first.
	CurvePreferences []tls.CurveID
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Policy) minVersion() uint16 {
	if p.Params.MinVersion == 0 {
		return tls.VersionTLS12
	}
	return p.Params.MinVersion
}

// Validate reports a policy that cannot work, naming the channel.
func (p *Policy) Validate() error {
	if !p.Mode.Valid() {
		return fmt.Errorf("channel %s: invalid ssl_mode %d", p.Channel, p.Mode)
	}
	if !p.Mode.UsesTLS() {
		return nil
	}
	var snap *certs.Snapshot
	if p.Creds != nil {
		snap = p.Creds.Current()
	}
	if missing := p.Mode.MissingMaterial(snap != nil && snap.Cert != nil, snap != nil && snap.Roots != nil); missing != "" {
		return fmt.Errorf("channel %s: %s", p.Channel, missing)
	}
	if p.Params.MaxVersion == tls.VersionTLS12 {
		// Limited to TLS 1.2, the suites must fit this member's key, or
		// every handshake fails.
		if err := tlsopt.SuitesMatchKey(p.Params.CipherSuites, snap.Cert.Leaf.PublicKey); err != nil {
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
	if !parseHostIP(identity) {
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
	cfg.ClientAuth = p.Mode.Rules().ClientAuth
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
		CipherSuites:     p.Params.CipherSuites,
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
	leaf, err := p.verifyChain(cs, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	if p.Mode.VerifiesIdentity() && !NameMatches(leaf, identity) {
		return fmt.Errorf("channel %s: VERIFY_IDENTITY: peer certificate %s does not name %q", p.Channel, certName(leaf), identity)
	}
	return nil
}

// verifyClient checks the dialing peer's certificate on the accepting side.
func (p *Policy) verifyClient(cs tls.ConnectionState, identities []string) error {
	if err := p.checkSuite(cs); err != nil {
		return err
	}
	if !p.Mode.VerifiesChain() {
		return nil
	}
	usage := x509.ExtKeyUsageClientAuth
	leaf, err := p.verifyChain(cs, usage)
	if err != nil {
		return err
	}
	if p.Mode.VerifiesIdentity() && !slices.ContainsFunc(identities, func(id string) bool { return NameMatches(leaf, id) }) {
		return fmt.Errorf("channel %s: VERIFY_IDENTITY: client certificate %s names no member of the group", p.Channel, certName(leaf))
	}
	return nil
}

// verifyChain verifies the peer's chain against the current snapshot.
func (p *Policy) verifyChain(cs tls.ConnectionState, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("channel %s: %s: %w", p.Channel, p.Mode, ErrNoPeerCertificate)
	}
	usages := []x509.ExtKeyUsage{usage}
	if usage == x509.ExtKeyUsageClientAuth && p.ServerAuthClients {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	if _, err := p.Creds.Current().VerifyPeer(cs.PeerCertificates, usages, p.now()); err != nil {
		return nil, fmt.Errorf("channel %s: %s: %w", p.Channel, p.Mode, err)
	}
	return cs.PeerCertificates[0], nil
}

// Reverify checks a live link's peer certificates against the current
// snapshot again (after a CA or CRL reload, or when the peer's certificate
// may have expired). client says the peer is in the client role.
func (p *Policy) Reverify(peer []*x509.Certificate, client bool) error {
	if !p.Mode.VerifiesChain() {
		return nil
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	_, err := p.verifyChain(tls.ConnectionState{PeerCertificates: peer}, usage)
	return err
}

// checkSuite enforces tls_ciphersuites, which Go cannot configure for TLS
// 1.3: a handshake that negotiated a suite outside the list is refused.
func (p *Policy) checkSuite(cs tls.ConnectionState) error {
	if cs.Version != tls.VersionTLS13 || p.Params.TLS13Suites == nil || slices.Contains(p.Params.TLS13Suites, cs.CipherSuite) {
		return nil
	}
	return fmt.Errorf("channel %s: tls_ciphersuites does not allow %s", p.Channel, tls.CipherSuiteName(cs.CipherSuite))
}
