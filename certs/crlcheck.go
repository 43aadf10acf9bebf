package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// Check checks every certificate of chain (leaf first, root last) except a
// self-signed root against a CRL of its issuer, as OpenSSL's
// CRL_CHECK|CRL_CHECK_ALL does: the CRL must come from the CA whose key
// signed the certificate (chain[i+1]), be current at now and carry no
// unhandled critical extension, and must not list the certificate.
// Failures wrap ErrCRLMissing or ErrCRLExpired, or are a *RevokedError.
// A nil set checks nothing.
func (s *CRLSet) Check(chain []*x509.Certificate, now time.Time) error {
	if s == nil {
		return nil
	}
	return checkChain(chain, now, func(c, issuer *x509.Certificate) error { return s.checkOne(c, issuer, nil, nil, now) })
}

// checkChain calls checkOne for every certificate of chain but a
// self-signed root, with the certificate above it as issuer (nil at the
// top of a rootless chain), and returns the first failure.
func checkChain(chain []*x509.Certificate, now time.Time, checkOne func(c, issuer *x509.Certificate) error) error {
	for i, c := range chain {
		last := i == len(chain)-1
		if last && bytes.Equal(c.RawSubject, c.RawIssuer) {
			break // the trust anchor: nothing above it issues a CRL for it
		}
		var issuer *x509.Certificate
		if !last {
			issuer = chain[i+1]
		}
		if err := checkOne(c, issuer); err != nil {
			return err
		}
	}
	return nil
}

// checkOne checks one certificate against the loaded CRLs of its issuer
// and fetched, a CRL from its distribution point (nil when none); the
// most current of them decides. issuer is nil when the chain ends below
// a root; then any CRL of a configured CA that signed c will do.
// fetchErr says why no CRL could be fetched, for the error.
func (s *CRLSet) checkOne(c, issuer *x509.Certificate, fetched *crlIndex, fetchErr error, now time.Time) error {
	var best *crlIndex
	consider := func(idx *crlIndex) {
		if best == nil || (!crlCurrent(best, now) && crlCurrent(idx, now)) {
			best = idx
		}
	}
	if s != nil {
		for _, idx := range s.byIssuer[string(c.RawIssuer)] {
			if crlCovers(idx, c, issuer) {
				consider(idx)
			}
		}
	}
	if fetched != nil {
		consider(fetched)
	}
	if best == nil {
		why := "no CRL of its issuer %q is loaded"
		if fetchErr != nil {
			return fmt.Errorf("%w for %q: "+why+" and none could be fetched: %v", ErrCRLMissing, c.Subject, issuerName(c, issuer), fetchErr)
		}
		return fmt.Errorf("%w for %q: "+why, ErrCRLMissing, c.Subject, issuerName(c, issuer))
	}
	// A revocation counts even in a CRL past its nextUpdate, so that no
	// fail-open policy ever lets a listed certificate through.
	if best.revokes(c.SerialNumber) {
		return &RevokedError{
			Subject: c.Subject.String(),
			Serial:  c.SerialNumber,
			Issuer:  best.issuer.Subject.String(),
			CRL:     best.file,
		}
	}
	switch {
	case best.critical != "":
		return fmt.Errorf("CRL %s of %q is unusable: %s", best.file, best.issuer.Subject, best.critical)
	case now.Before(best.thisUpdate):
		return fmt.Errorf("CRL is not yet valid: CRL %s of %q has thisUpdate %s, now is %s",
			best.file, best.issuer.Subject, best.thisUpdate.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case !best.nextUpdate.IsZero() && now.After(best.nextUpdate):
		return fmt.Errorf("%w: CRL %s of %q had nextUpdate %s", ErrCRLExpired,
			best.file, best.issuer.Subject, best.nextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// crlCovers reports whether idx was signed by c's issuer: the same key as
// the chain's next certificate, or, at the top of a rootless chain, a key
// that verifies c's own signature.
func crlCovers(idx *crlIndex, c, issuer *x509.Certificate) bool {
	if issuer != nil {
		return bytes.Equal(idx.issuer.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo)
	}
	return c.CheckSignatureFrom(idx.issuer) == nil
}

// crlCurrent reports whether idx is within its validity window at now.
func crlCurrent(idx *crlIndex, now time.Time) bool {
	return idx.critical == "" && !now.Before(idx.thisUpdate) && (idx.nextUpdate.IsZero() || !now.After(idx.nextUpdate))
}

func issuerName(c, issuer *x509.Certificate) string {
	if issuer != nil {
		return issuer.Subject.String()
	}
	return c.Issuer.String()
}
