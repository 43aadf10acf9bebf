package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the current snapshot of one Source and reloads it
// all-or-nothing: a reload that fails leaves the old snapshot in force.
// Its methods are safe for concurrent use.
type Store struct {
	name string
	src  Source
	cur  atomic.Pointer[Snapshot]

	reloadMu sync.Mutex // serialises Reload and SetCertificate
	// Guarded by reloadMu: the digest of the files as last loaded, and the
	// certificate set by SetCertificate (nil when ssl_cert/ssl_key are used).
	filesDigest [32]byte
	ext         *tls.Certificate
	extTrust    []*x509.Certificate // trust anchors set by SetSupplied (nil: ssl_ca/ssl_capath)

	statusMu sync.Mutex
	lastErr  error

	fetch *crlFetcher // ssl_crl_fetch; nil when off
}

// NewStore loads src; the first load must succeed. name says what the
// material is for in logs and errors, for example "channel group".
func NewStore(name string, src Source) (*Store, error) {
	snap, err := Load(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &Store{name: name, src: src, filesDigest: snap.Digest}
	if src.CRLFetch {
		s.fetch = newCRLFetcher(CRLFetchOptions{}, src.CRLFetchFailOpen)
		s.fetch.onSwap = s.renewVerifications
	}
	snap.fetch = s.fetch
	s.cur.Store(snap)
	return s, nil
}

// renewVerifications swaps in a copy of the snapshot in force with an
// empty verification cache, after a fetched CRL changed, so that no peer
// passes on a verification made under the old CRL.
func (s *Store) renewVerifications() {
	for {
		cur := s.cur.Load()
		next := *cur
		next.verified = newVerifyCache()
		if s.cur.CompareAndSwap(cur, &next) {
			return
		}
	}
}

// SetCRLFetchOptions sets the fetch's time-out, size bound or HTTP client
// (for tests and tuning). It is a no-op without ssl_crl_fetch and must be
// called before the store is used.
func (s *Store) SetCRLFetchOptions(opts CRLFetchOptions) {
	if s.fetch != nil {
		s.fetch.configure(opts)
	}
}

// FetchesCRLs reports whether the store fetches CRLs (ssl_crl_fetch).
func (s *Store) FetchesCRLs() bool { return s.fetch != nil }

// RunCRLFetch refreshes the fetched CRLs ahead of their nextUpdate until
// ctx ends, calling onChange (when not nil) after a CRL in force changed,
// so that live links can be checked again, and onError with each failed
// refresh (the last good CRL stays in force), from several goroutines at
// once when refreshes fail together. It returns at once without
// ssl_crl_fetch.
func (s *Store) RunCRLFetch(ctx context.Context, onChange func(), onError func(error)) {
	if s.fetch != nil {
		s.fetch.run(ctx, onChange, onError)
	}
}

// RefreshCRLs fetches the CRL of every distribution point seen so far
// again now, as on SIGHUP, and returns the failures; each failed one
// keeps its last good CRL.
func (s *Store) RefreshCRLs(ctx context.Context) error {
	if s.fetch == nil {
		return nil
	}
	if err := s.fetch.refreshAll(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// FetchedCRLs describes the distribution points seen so far, by URL.
func (s *Store) FetchedCRLs() []FetchedCRLInfo {
	if s.fetch == nil {
		return nil
	}
	return s.fetch.info()
}

// FailOpens counts the certificates let through without a current
// fetched CRL under ssl_crl_fetch_fail_open.
func (s *Store) FailOpens() uint64 {
	if s.fetch == nil {
		return 0
	}
	return s.fetch.opened.Load()
}

// Name returns the name given to NewStore.
func (s *Store) Name() string { return s.name }

// Source returns the files the store loads.
func (s *Store) Source() Source { return s.src }

// Current returns the snapshot in force. It never returns nil.
func (s *Store) Current() *Snapshot { return s.cur.Load() }

// Reload rebuilds the snapshot from the files and swaps it in if it is
// valid and differs; on error the old snapshot stays in force and the
// error, prefixed with the store's name, is returned and kept for
// LastError. changed is false when the files' content is unchanged.
func (s *Store) Reload() (changed bool, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	snap, err := Load(s.src)
	if err != nil {
		err = fmt.Errorf("reload %s: %w", s.name, err)
	} else if snap.fetch, s.filesDigest = s.fetch, snap.Digest; s.withExternal(snap) != s.cur.Load().Digest {
		s.cur.Store(snap)
		changed = true
	}
	s.statusMu.Lock()
	s.lastErr = err
	s.statusMu.Unlock()
	return changed, err
}

// LastError returns the error of the latest reload, or nil if it
// succeeded (or none was tried since NewStore).
func (s *Store) LastError() error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.lastErr
}

// Paths returns the configured files (ssl_ca, ssl_cert, ssl_key, ssl_crl)
// and folders (ssl_capath, ssl_crlpath), empty options left out.
func (s *Store) Paths() (files, dirs []string) {
	for _, f := range []string{s.src.CA, s.src.Cert, s.src.Key, s.src.CRL} {
		if f != "" {
			files = append(files, f)
		}
	}
	for _, d := range []string{s.src.CAPath, s.src.CRLPath} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return files, dirs
}

// ReloadAll reloads every store, as on SIGHUP, calling onReload (when not
// nil) after each attempt. It returns the failures joined; stores that
// failed keep their old snapshot.
func ReloadAll(stores []*Store, onReload func(s *Store, changed bool, err error)) error {
	var errs []error
	for _, s := range stores {
		changed, err := s.Reload()
		if onReload != nil {
			onReload(s, changed, err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SetCertificate makes cert (a chain, leaf first, with its private key) the
// member's own certificate in place of ssl_cert/ssl_key, as an ACME client
// supplies it: a new snapshot with the new certificate and a new Digest is
// swapped in atomically, and later reloads of the other files keep it.
// It is an error when the store's Source names ssl_cert or ssl_key, or
// when the key does not match the leaf. Setting the certificate in force
// again changes nothing.
func (s *Store) SetCertificate(cert *tls.Certificate) error {
	if s.src.Cert != "" || s.src.Key != "" {
		return fmt.Errorf("%s: set certificate: ssl_cert/ssl_key (%s, %s) are configured; a supplied certificate cannot replace them", s.name, s.src.Cert, s.src.Key)
	}
	if err := checkSuppliedCert(cert); err != nil {
		return fmt.Errorf("%s: set certificate: %w", s.name, err)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.ext = cert
	cur := s.cur.Load()
	next := *cur
	s.withExternal(&next)
	if next.Digest != cur.Digest {
		next.LoadedAt = time.Now()
		s.cur.Store(&next)
	}
	return nil
}

// SetSupplied makes cert the member's own certificate and trust the CA
// certificates peers must chain to, in place of ssl_cert, ssl_key,
// ssl_ca and ssl_capath, as the SPIFFE Workload API supplies an SVID and
// its trust domain's bundle: both are swapped in at once, in one new
// snapshot. trustChanged reports whether the trust anchors differ from
// those in force, so that live links can be checked again. It is an error
// when the Source names any of those files, when trust is empty, or when
// the key does not match the leaf.
func (s *Store) SetSupplied(cert *tls.Certificate, trust []*x509.Certificate) (trustChanged bool, err error) {
	if s.src.Cert != "" || s.src.Key != "" || s.src.CA != "" || s.src.CAPath != "" {
		return false, fmt.Errorf("%s: set supplied material: ssl_cert, ssl_key, ssl_ca or ssl_capath is configured; supplied material cannot replace them", s.name)
	}
	if len(trust) == 0 {
		return false, fmt.Errorf("%s: set supplied material: no trust anchor", s.name)
	}
	if err := checkSuppliedCert(cert); err != nil {
		return false, fmt.Errorf("%s: set supplied material: %w", s.name, err)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	trustChanged = !slices.EqualFunc(s.extTrust, trust, func(a, b *x509.Certificate) bool { return a.Equal(b) })
	s.ext, s.extTrust = cert, trust
	cur := s.cur.Load()
	next := *cur
	s.withExternal(&next)
	if next.Digest != cur.Digest {
		next.LoadedAt = time.Now()
		next.verified = newVerifyCache()
		s.cur.Store(&next)
	}
	return trustChanged, nil
}

// withExternal puts the supplied certificate and trust anchors, if any,
// into a snapshot of the files (whose digest is s.filesDigest) and mixes
// them into the Digest, so that TLS sessions tied to the old digest are
// not resumed after a change. It returns the snapshot's Digest. The
// caller holds reloadMu.
func (s *Store) withExternal(snap *Snapshot) [32]byte {
	if s.ext == nil && s.extTrust == nil {
		return snap.Digest
	}
	d := newDigester()
	d.add("files", s.filesDigest[:])
	if s.ext != nil {
		for i, der := range s.ext.Certificate {
			d.add(fmt.Sprintf("supplied certificate #%d", i), der)
		}
		snap.Cert = s.ext
	}
	if s.extTrust != nil {
		snap.Roots, snap.Intermediates = x509.NewCertPool(), x509.NewCertPool()
		for i, ca := range s.extTrust {
			d.add(fmt.Sprintf("supplied trust anchor #%d", i), ca.Raw)
			snap.Roots.AddCert(ca) // a bundle's authorities are all anchors
		}
	}
	snap.Digest = d.sum()
	return snap.Digest
}

// checkSuppliedCert checks that cert holds a parsable leaf (setting Leaf
// when missing) whose public key matches the private key.
func checkSuppliedCert(cert *tls.Certificate) error {
	if cert == nil || len(cert.Certificate) == 0 {
		return errors.New("no certificate")
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return fmt.Errorf("parse leaf certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("private key of type %T cannot sign", cert.PrivateKey)
	}
	pub, ok := cert.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return fmt.Errorf("private key does not match certificate %s", cert.Leaf.Subject)
	}
	return nil
}
