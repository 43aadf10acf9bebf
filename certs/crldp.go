package certs

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// This file holds what a CRL fetched from a distribution point must pass
// before it is used: the parse, the issuer, the signature and the dates.
// The fetching itself is crlfetch.go.

// DistributionPoints returns the http:// URLs of c's CRL distribution
// points, in the certificate's order. Other schemes (ldap, https, whose
// own check would need this CRL) are left out.
func DistributionPoints(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.CRLDistributionPoints {
		if p, err := url.Parse(u); err == nil && p.Scheme == "http" && p.Host != "" {
			out = append(out, u)
		}
	}
	return out
}

// ParseFetchedCRL parses a CRL fetched from url (DER, or PEM holding one
// "X509 CRL" block) and checks it as the CRL of issuer at now: v2, issued
// by issuer's name, signed by issuer's key, with a nextUpdate, not issued
// in the future, and no critical extension groupwire does not handle.
// Errors say which check failed.
func ParseFetchedCRL(data []byte, url string, issuer *x509.Certificate, now time.Time) (*FetchedCRL, error) {
	der, err := oneCRLDER(data)
	if err != nil {
		return nil, err
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
		return nil, fmt.Errorf("CRL issuer %q is not the certificate's issuer %q", rl.Issuer, issuer.Subject)
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("CRL signature does not verify with the key of its issuer %q: %w", issuer.Subject, err)
	}
	switch {
	case rl.ThisUpdate.After(now.Add(maxClockSkew)):
		return nil, fmt.Errorf("CRL thisUpdate %s is in the future", rl.ThisUpdate.UTC().Format(time.RFC3339))
	case !rl.NextUpdate.After(rl.ThisUpdate): // an absent nextUpdate (zero) too
		return nil, fmt.Errorf("CRL has no nextUpdate after its thisUpdate %s (nextUpdate %q), so it cannot be cached or known to be current",
			rl.ThisUpdate.UTC().Format(time.RFC3339), nextUpdateText(rl.NextUpdate))
	}
	exts, err := withoutPlainIDP(rl.Extensions)
	if err != nil {
		return nil, err
	}
	idx := newCRLIndex(url, issuer, rl.ThisUpdate, rl.NextUpdate, exts, len(rl.RevokedCertificateEntries))
	if idx.critical != "" {
		return nil, fmt.Errorf("CRL is unusable: %s", idx.critical)
	}
	for _, e := range rl.RevokedCertificateEntries {
		idx.addRevoked(e.SerialNumber, e.Extensions)
	}
	if idx.critical != "" {
		return nil, fmt.Errorf("CRL is unusable: %s", idx.critical)
	}
	return &FetchedCRL{idx: idx, digest: crlDigest(der)}, nil
}

// maxClockSkew is how far in the future a fetched CRL's thisUpdate may
// lie: a CA's clock a little ahead of ours is not an attack.
const maxClockSkew = 5 * time.Minute

// oneCRLDER returns the DER of data: data itself, or the one "X509 CRL"
// block of a PEM file.
func oneCRLDER(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		if len(data) == 0 {
			return nil, errors.New("empty response")
		}
		return data, nil
	}
	ders, err := crlDERs(data)
	if err != nil {
		return nil, err
	}
	if len(ders) != 1 {
		return nil, fmt.Errorf("%d CRLs in one response, want 1", len(ders))
	}
	return ders[0], nil
}

// FetchedCRL is one verified CRL from a distribution point.
type FetchedCRL struct {
	idx    *crlIndex
	digest [32]byte // of the DER, to tell a new CRL from the same one again
}

// idpOID is the issuingDistributionPoint extension. A distribution point's
// CRL often carries it, critical as RFC 5280 requires; groupwire handles
// the plain form, which names where the CRL lives and narrows nothing.
var idpOID = asn1.ObjectIdentifier{2, 5, 29, 28}

// issuingDistributionPoint is RFC 5280's IssuingDistributionPoint.
type issuingDistributionPoint struct {
	DistributionPoint          asn1.RawValue  `asn1:"optional,tag:0"`
	OnlyContainsUserCerts      bool           `asn1:"optional,tag:1"`
	OnlyContainsCACerts        bool           `asn1:"optional,tag:2"`
	OnlySomeReasons            asn1.BitString `asn1:"optional,tag:3"`
	IndirectCRL                bool           `asn1:"optional,tag:4"`
	OnlyContainsAttributeCerts bool           `asn1:"optional,tag:5"`
}

// withoutPlainIDP returns exts without an issuingDistributionPoint that
// narrows nothing. One that covers only some certificates, reasons or
// issuers is refused: such a CRL is one partition, and treating it as the
// issuer's whole list could miss a revocation.
func withoutPlainIDP(exts []pkix.Extension) ([]pkix.Extension, error) {
	out := make([]pkix.Extension, 0, len(exts))
	for _, e := range exts {
		if !e.Id.Equal(idpOID) {
			out = append(out, e)
			continue
		}
		var idp issuingDistributionPoint
		if rest, err := asn1.Unmarshal(e.Value, &idp); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("CRL issuingDistributionPoint is malformed")
		}
		if idp.OnlyContainsUserCerts || idp.OnlyContainsCACerts || idp.OnlySomeReasons.BitLength > 0 || idp.IndirectCRL || idp.OnlyContainsAttributeCerts {
			return nil, errors.New("CRL is a partition (its issuingDistributionPoint covers only some certificates or reasons); groupwire needs the issuer's full CRL")
		}
	}
	return out, nil
}

// nextUpdateText is a CRL's nextUpdate for an error: "" when it has none.
func nextUpdateText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
