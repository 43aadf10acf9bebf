package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
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
	key := verifyKey(peer, usages)
	if chain, ok := s.verified.get(key, now); ok {
		return chain, nil
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
		err := s.checkRevocation(chain, now)
		if err == nil {
			s.verified.put(key, chain, s.validUntil(chain))
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

// verifyCache remembers successful peer verifications under one snapshot,
// so that a resumed link, whose peer presents the same certificates again,
// skips the signature checks (15% of a resumed link's setup CPU). The
// inputs of a verification are the peer's certificates, the key usages and
// the snapshot's CAs and CRLs, which never change; the only other input is
// the time, so an entry lasts until the first certificate of its chain or
// CRL expires. A reload makes a new snapshot and with it an empty cache.
//
// It is bounded by entries and by bytes, and keyed by a digest of the
// inputs, so a peer that pads its chain differently on every handshake
// pins at most a digest and its verified chain per entry, and never more
// than verifyCacheMaxBytes in all.
type verifyCache struct {
	mu    sync.Mutex
	m     map[verifyDigest]verifyEntry // guarded by mu
	bytes int                          // guarded by mu; the cost of the entries held
}

// verifyDigest is the SHA-256 of a verification's inputs.
type verifyDigest [sha256.Size]byte

type verifyEntry struct {
	chain []*x509.Certificate
	until time.Time // the result holds strictly before this time
	cost  int
}

// The cache's bounds; when a new entry would pass either, the cache is
// emptied, which costs one full verification per peer.
const (
	verifyCacheMax      = 4096
	verifyCacheMaxBytes = 4 << 20
	verifyEntryOverhead = 128 // the map slot, the digest and the slice headers
)

func newVerifyCache() *verifyCache { return &verifyCache{m: make(map[verifyDigest]verifyEntry)} }

func (c *verifyCache) get(key verifyDigest, now time.Time) ([]*x509.Certificate, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.chain, true
}

func (c *verifyCache) put(key verifyDigest, chain []*x509.Certificate, until time.Time) {
	if c == nil {
		return
	}
	cost := verifyEntryOverhead
	for _, cert := range chain {
		cost += len(cert.Raw)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok {
		return
	}
	if len(c.m) >= verifyCacheMax || c.bytes+cost > verifyCacheMaxBytes {
		clear(c.m)
		c.bytes = 0
	}
	c.m[key] = verifyEntry{chain: chain, until: until, cost: cost}
	c.bytes += cost
}

// verifyKey digests a verification's inputs other than the snapshot: the
// key usages and every certificate the peer presented.
func verifyKey(peer []*x509.Certificate, usages []x509.ExtKeyUsage) verifyDigest {
	h := sha256.New()
	for _, u := range usages {
		h.Write([]byte{byte(u)})
	}
	var n [5]byte
	for _, c := range peer {
		size := 0
		if c != nil {
			size = len(c.Raw)
		}
		binary.BigEndian.PutUint32(n[1:], uint32(size))
		h.Write(n[:])
		if c != nil {
			h.Write(c.Raw)
		}
	}
	var d verifyDigest
	h.Sum(d[:0])
	return d
}

// validUntil is when a verification of chain stops holding: the first
// NotAfter of the chain, or the first nextUpdate of a loaded CRL.
func (s *Snapshot) validUntil(chain []*x509.Certificate) time.Time {
	var until time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (until.IsZero() || t.Before(until)) {
			until = t
		}
	}
	for _, c := range chain {
		earlier(c.NotAfter)
	}
	if s.CRLs != nil {
		for _, info := range s.CRLs.Info() {
			earlier(info.NextUpdate)
		}
	}
	if s.fetch != nil {
		earlier(s.fetch.validUntil(chain))
	}
	return until
}

// checkRevocation checks chain against the loaded CRLs and, under
// ssl_crl_fetch, the CRLs of the certificates' distribution points. With
// CRLFetchFailOpen, a certificate whose CRL is missing or past its
// nextUpdate passes and is counted.
func (s *Snapshot) checkRevocation(chain []*x509.Certificate, now time.Time) error {
	if s.fetch == nil {
		return s.CRLs.Check(chain, now)
	}
	return checkChain(chain, now, func(c, issuer *x509.Certificate) error {
		var fetched *crlIndex
		var fetchErr error
		if issuer != nil {
			fetched, fetchErr = s.fetch.lookup(c, issuer, now)
		}
		err := s.CRLs.checkOne(c, issuer, fetched, fetchErr, now)
		if err != nil && s.fetch.failOpen && (errors.Is(err, ErrCRLMissing) || errors.Is(err, ErrCRLExpired)) {
			s.fetch.opened.Add(1)
			return nil
		}
		return err
	})
}
