//go:build !certs_wip

package certs

// STUB FILE: the certs helper replaces everything here with real code in
// properly named files (crl.go, load.go, store.go, verify.go, watch.go) and
// deletes this file. The signatures are the contract other packages use.

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"time"
)

// ErrCRLMissing is wrapped when CRL checking is on and no CRL of a
// certificate's issuer is loaded.
var ErrCRLMissing = errors.New("unable to get certificate CRL")

// ErrCRLExpired is wrapped when the issuer's CRL is past its nextUpdate.
var ErrCRLExpired = errors.New("CRL has expired")

// RevokedError reports a revoked certificate of a chain.
type RevokedError struct {
	Subject string   // subject of the revoked certificate
	Serial  *big.Int // its serial number
	CRL     string   // the file the CRL was loaded from
}

func (e *RevokedError) Error() string { return "certificate revoked" }

// CRLSet indexes loaded CRLs by issuer, with revoked serials in a set.
type CRLSet struct{}

// Check checks every non-root certificate of chain (leaf first, root last)
// against a CRL of its issuer, as OpenSSL CRL_CHECK|CRL_CHECK_ALL.
func (s *CRLSet) Check(chain []*x509.Certificate, now time.Time) error { return nil }

// Load reads and validates every file of src into a new snapshot.
func Load(src Source) (*Snapshot, error) { return nil, errors.New("todo") }

// VerifyPeer verifies a peer's certificates (leaf first, as sent in the
// handshake) against the snapshot's Roots and Intermediates for one of the
// given key usages, then checks CRLs (when configured) on the resulting
// chains; it returns the first chain that passes.
func (s *Snapshot) VerifyPeer(peer []*x509.Certificate, usages []x509.ExtKeyUsage, now time.Time) ([]*x509.Certificate, error) {
	return nil, errors.New("todo")
}

// Store holds the current snapshot of one Source and reloads it
// all-or-nothing.
type Store struct{}

// NewStore loads src; the first load must succeed.
func NewStore(name string, src Source) (*Store, error) { return nil, errors.New("todo") }

// Current returns the snapshot in force. It never returns nil.
func (s *Store) Current() *Snapshot { return nil }

// Reload rebuilds the snapshot from the files and swaps it in if it is
// valid and differs; on error the old snapshot stays in force.
func (s *Store) Reload() (changed bool, err error) { return false, nil }

// WatchOptions tunes Watch.
type WatchOptions struct {
	Interval time.Duration                            // periodic re-check; zero means 30s
	Debounce time.Duration                            // quiet time after events; zero means 150ms
	OnReload func(s *Store, changed bool, err error) // called after every reload attempt
}

// Watch reloads stores when their files change until ctx ends.
func Watch(ctx context.Context, stores []*Store, opts WatchOptions) error { <-ctx.Done(); return nil }
