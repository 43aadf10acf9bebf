package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport"
)

// ExpiryWarning is how close to its end a certificate's validity has to be
// for CheckMaterial to warn.
const ExpiryWarning = 30 * 24 * time.Hour

// CRLExpiryWarning is how close to its nextUpdate a CRL has to be for
// check to warn. CRLs are re-signed often (daily to monthly), so the
// window is short.
const CRLExpiryWarning = 24 * time.Hour

// CheckMaterial opens every certificate, key, CA and CRL file of every TLS
// channel of the plan and checks them in ssl_mode terms, as of now: the key
// matches the certificate; certificates are within their validity (a
// warning when one ends within ExpiryWarning); for VERIFY_CA and
// VERIFY_IDENTITY the member's own certificate chains to the configured CA
// for both serverAuth and clientAuth (links are mutual, every sidecar is
// both) and is not revoked by the configured CRLs; for VERIFY_IDENTITY it
// names the member's identity. Paths read like
// "channels.group.tls.ssl_cert (/certs/mysql-2.pem)".
func CheckMaterial(p *Plan, now time.Time) []Problem {
	var ps problems
	identity := p.Member
	for _, m := range p.Members {
		if m.Name == p.Member {
			identity = m.Identity
		}
	}
	for _, ch := range p.Channels {
		if !ch.MaterialMode().UsesTLS() {
			continue
		}
		checkChannelMaterial(ch, identity, now, &ps)
	}
	return ps.list
}

// checkChannelMaterial checks the files of one TLS channel.
func checkChannelMaterial(ch ChannelPlan, identity string, now time.Time, ps *problems) {
	prefix := "channels." + ch.Name + ".tls"
	src := ch.Source
	// Load in stages so that a bad CA file does not hide a bad key pair.
	pair, pairOK := loadStage(prefix, certs.Source{Cert: src.Cert, Key: src.Key}, ps)
	trust := certs.Source{CA: src.CA, CAPath: src.CAPath}
	_, trustOK := loadStage(prefix, trust, ps)
	if trustOK && (src.CRL != "" || src.CRLPath != "") {
		trust.CRL, trust.CRLPath = src.CRL, src.CRLPath
		var snap *certs.Snapshot
		if snap, trustOK = loadStage(prefix, trust, ps); trustOK {
			checkCRLDates(prefix, src, snap.CRLs, now, ps)
		}
	}
	if src.CA != "" {
		checkCAFile(prefix+".ssl_ca ("+src.CA+")", src.CA, now, ps)
	}
	if pairOK && src.Key != "" {
		checkKeyExposure(prefix, src.Key, ps)
	}
	if !pairOK || pair.Cert == nil {
		return
	}
	certPath := prefix + ".ssl_cert (" + src.Cert + ")"
	chain, err := certChain(pair)
	if err != nil {
		ps.add(certPath, "%v", err)
		return
	}
	inValidity := true
	for i, c := range chain {
		what := "certificate"
		if i > 0 {
			what = "intermediate CA certificate"
		}
		inValidity = checkValidity(certPath, what, c, now, ps) && inValidity
	}
	if ch.MaterialMode().VerifiesChain() && trustOK && inValidity {
		full, err := certs.Load(src)
		if err != nil {
			ps.addProblem(loadProblem(prefix, err))
			return
		}
		checkChain(certPath, full, chain, now, ps)
	}
	if ch.MaterialMode().VerifiesIdentity() && !transport.NameMatches(chain[0], identity) {
		ps.add(certPath, "does not name this member's identity %q (it names %s); VERIFY_IDENTITY peers would refuse it",
			identity, certNames(chain[0]))
	}
}

// checkKeyExposure warns when others than the key file's owner can read it.
func checkKeyExposure(prefix, key string, ps *problems) {
	if msg, err := certs.KeyExposure(key); err == nil && msg != "" {
		ps.warn(prefix+".ssl_key ("+key+")", "%s", msg)
	}
}

// loadStage loads part of a channel's files, recording a problem on failure.
func loadStage(prefix string, src certs.Source, ps *problems) (*certs.Snapshot, bool) {
	if src == (certs.Source{}) {
		return &certs.Snapshot{}, true
	}
	snap, err := certs.Load(src)
	if err != nil {
		ps.addProblem(loadProblem(prefix, err))
		return nil, false
	}
	return snap, true
}

// loadProblem turns a certs.Load error into a problem at the option and
// file it names (a *certs.LoadError).
func loadProblem(prefix string, err error) Problem {
	var le *certs.LoadError
	if errors.As(err, &le) {
		return Problem{Path: prefix + "." + le.Option + " (" + le.Path + ")", Msg: le.Err.Error()}
	}
	return Problem{Path: prefix, Msg: err.Error()}
}

// certChain returns the parsed certificates of the member's ssl_cert, leaf
// first.
func certChain(snap *certs.Snapshot) ([]*x509.Certificate, error) {
	chain := []*x509.Certificate{snap.Cert.Leaf}
	for _, der := range snap.Cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("parse chain certificate: %w", err)
		}
		chain = append(chain, c)
	}
	if chain[0] == nil {
		leaf, err := x509.ParseCertificate(snap.Cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		chain[0] = leaf
	}
	return chain, nil
}

// checkValidity records an error when c is outside its validity at now and
// a warning when it ends within ExpiryWarning; it reports whether c is
// valid now.
func checkValidity(path, what string, c *x509.Certificate, now time.Time, ps *problems) bool {
	subject := c.Subject.String()
	switch {
	case now.Before(c.NotBefore):
		ps.add(path, "%s %q is not valid before %s", what, subject, c.NotBefore.UTC().Format(time.RFC3339))
		return false
	case now.After(c.NotAfter):
		ps.add(path, "%s %q expired on %s", what, subject, c.NotAfter.UTC().Format(time.RFC3339))
		return false
	case c.NotAfter.Sub(now) < ExpiryWarning:
		ps.warn(path, "%s %q expires on %s, in %s", what, subject, c.NotAfter.UTC().Format(time.RFC3339), daysLeft(c.NotAfter.Sub(now)))
	}
	return true
}

// daysLeft renders a duration shorter than ExpiryWarning for a warning.
func daysLeft(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	if days == 1 {
		return "1 day"
	}
	if days == 0 {
		return "less than a day"
	}
	return fmt.Sprintf("%d days", days)
}

// checkCAFile checks the validity of every certificate of an ssl_ca file.
// Load has already parsed the file; a read failure here is left to it.
func checkCAFile(path, file string, now time.Time, ps *problems) {
	data, err := os.ReadFile(file)
	if err != nil {
		return
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			checkValidity(path, "CA certificate", c, now, ps)
		}
	}
}

// checkChain verifies the member's own certificate against its CA and CRLs
// for both uses it has on a link: server (accepting) and client (dialing).
func checkChain(path string, snap *certs.Snapshot, chain []*x509.Certificate, now time.Time, ps *problems) {
	_, serverErr := snap.VerifyPeer(chain, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, now)
	_, clientErr := snap.VerifyPeer(chain, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now)
	switch {
	case serverErr == nil && clientErr == nil:
	case serverErr != nil && clientErr != nil && serverErr.Error() == clientErr.Error():
		ps.add(path, "%s", chainMessage(serverErr))
	default:
		if serverErr != nil {
			ps.add(path, "as a TLS server (accepting links): %s", chainMessage(serverErr))
		}
		if clientErr != nil {
			ps.add(path, "as a TLS client (dialing links): %s", chainMessage(clientErr))
		}
	}
}

// chainMessage explains a VerifyPeer failure in ssl_ca/ssl_crl terms.
func chainMessage(err error) string {
	var revoked *certs.RevokedError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &revoked):
		return err.Error()
	case errors.Is(err, certs.ErrCRLMissing), errors.Is(err, certs.ErrCRLExpired):
		return "revocation cannot be checked (peers would refuse it): " + err.Error()
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return "extended key usage does not allow it (a member certificate needs both serverAuth and clientAuth): " + err.Error()
	}
	return "does not verify against ssl_ca/ssl_capath: " + err.Error()
}

// certNames lists the names a certificate carries, for messages.
func certNames(c *x509.Certificate) string {
	var names []string
	for _, n := range c.DNSNames {
		names = append(names, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		names = append(names, "IP:"+ip.String())
	}
	if len(c.DNSNames) == 0 && c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	if len(names) == 0 {
		return "no name"
	}
	return strings.Join(names, ", ")
}

// checkCRLDates reports CRLs past their nextUpdate (with CRL checking on,
// OpenSSL and groupwire then refuse every handshake) and warns of those
// that expire within CRLExpiryWarning.
func checkCRLDates(prefix string, src certs.Source, crls *certs.CRLSet, now time.Time, ps *problems) {
	if crls == nil {
		return
	}
	for _, info := range crls.Info() {
		opt := "ssl_crlpath"
		if info.File == src.CRL {
			opt = "ssl_crl"
		}
		path := prefix + "." + opt + " (" + info.File + ")"
		switch {
		case info.NextUpdate.IsZero():
		case now.After(info.NextUpdate):
			ps.add(path, "CRL of %s expired at %s (nextUpdate); every handshake with a certificate of that CA fails until it is re-signed",
				info.Issuer, info.NextUpdate.UTC().Format(time.RFC3339))
		case info.NextUpdate.Sub(now) < CRLExpiryWarning:
			ps.warn(path, "CRL of %s expires at %s (nextUpdate); re-sign it before then",
				info.Issuer, info.NextUpdate.UTC().Format(time.RFC3339))
		}
	}
}
