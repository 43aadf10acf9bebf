// Package certs owns key material and trust for groupwire: loading
// certificate, key, CA and CRL files named by MySQL-style ssl_* options into
// immutable snapshots, reloading them all-or-nothing, and checking
// certificate chains against CRLs the way OpenSSL's CRL_CHECK|CRL_CHECK_ALL
// does. It knows nothing about links, channels or ssl_mode.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// Source names the files of one credential set, using MySQL's option names.
// Empty fields are not configured.
type Source struct {
	CA      string // ssl_ca: PEM file with one or more CA certificates
	CAPath  string // ssl_capath: folder of PEM CA certificates (OpenSSL hashed names included)
	Cert    string // ssl_cert: PEM certificate chain, leaf first
	Key     string // ssl_key: PEM private key matching Cert
	CRL     string // ssl_crl: PEM (one or many CRLs) or DER file
	CRLPath string // ssl_crlpath: folder of CRL files (OpenSSL hashed .rN names included)
	// CRLFetch (ssl_crl_fetch) fetches the CRL of every certificate of a
	// peer's chain from the http:// distribution point it names.
	CRLFetch bool
	// CRLFetchFailOpen (ssl_crl_fetch_fail_open) lets a certificate pass
	// whose fetched CRL cannot be had or is past its nextUpdate, counting
	// each in FailOpens; a listed certificate is refused all the same.
	CRLFetchFailOpen bool
}

// Snapshot is one complete, validated set of key material. It is immutable
// once built; a reload builds a new one.
type Snapshot struct {
	// Cert is the member's own certificate with Leaf set, or nil when
	// ssl_cert/ssl_key are not configured.
	Cert *tls.Certificate
	// Roots holds the self-signed CA certificates of ssl_ca and ssl_capath,
	// or is nil when neither is configured.
	Roots *x509.CertPool
	// Intermediates holds the CA certificates of ssl_ca and ssl_capath that
	// are not self-signed, so that chains run to a real root and every CA of
	// the chain gets its CRL checked.
	Intermediates *x509.CertPool
	// CRLs is the revocation index, or nil when ssl_crl and ssl_crlpath are
	// not configured (then no revocation checking is done).
	CRLs *CRLSet
	// Digest is a hash over every file's content, to skip no-op reloads.
	Digest [32]byte
	// LoadedAt is when the snapshot was built.
	LoadedAt time.Time

	// verified remembers the peers VerifyPeer accepted under this
	// snapshot's CAs and CRLs; nil disables it. Snapshots that share CAs
	// and CRLs may share it.
	verified *verifyCache
	// fetch is the store's CRL fetcher under ssl_crl_fetch, else nil.
	fetch *crlFetcher
}
