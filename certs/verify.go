package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// VerifyPeer verifies a peer's certificates (leaf first, as sent in the
// handshake) against the snapshot's Roots and Intermediates for one of the
// given key usages, then checks CRLs (when configured) on the resulting
// chains; it returns the first chain that passes. When none passes, the
// most useful failure is returned: a revocation before a missing or
// expired CRL, and those before x509's own verdict. Errors name the peer's
// subject.
func (s *Snapshot) VerifyPeer(peer []*x509.Certificate, usages []x509.ExtKeyUsage, now time.Time) ([]*x509.Certificate, error) {
	if s.Roots == nil {
		return nil, errors.New("verify peer: no ssl_ca or ssl_capath configured")
	}
	if len(peer) == 0 || peer[0] == nil {
		return nil, errors.New("verify peer: peer sent no certificate")
	}
	leaf := peer[0]
	opts := x509.VerifyOptions{
		Roots:         s.Roots,
		Intermediates: s.intermediatesWith(peer[1:]),
		CurrentTime:   now,
		KeyUsages:     usages,
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return nil, fmt.Errorf("verify peer %q serial %s: %w", leaf.Subject, formatSerial(leaf.SerialNumber), err)
	}
	var best error
	for _, chain := range chains {
		err := s.CRLs.Check(chain, now)
		if err == nil {
			return chain, nil
		}
		if best == nil || crlErrorRank(err) > crlErrorRank(best) {
			best = err
		}
	}
	return nil, fmt.Errorf("verify peer %q serial %s: %w", leaf.Subject, formatSerial(leaf.SerialNumber), best)
}

// intermediatesWith returns the snapshot's intermediates plus extra, the
// certificates the peer sent after its leaf. The snapshot's pool is never
// modified.
func (s *Snapshot) intermediatesWith(extra []*x509.Certificate) *x509.CertPool {
	if len(extra) == 0 {
		return s.Intermediates
	}
	var pool *x509.CertPool
	if s.Intermediates != nil {
		pool = s.Intermediates.Clone()
	} else {
		pool = x509.NewCertPool()
	}
	for _, c := range extra {
		if c != nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// crlErrorRank orders CRL failures by how much they tell an operator.
func crlErrorRank(err error) int {
	var revoked *RevokedError
	switch {
	case errors.As(err, &revoked):
		return 3
	case errors.Is(err, ErrCRLMissing):
		return 1
	default: // expired, not yet valid, unhandled critical extension
		return 2
	}
}
