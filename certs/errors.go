package certs

import (
	"errors"
	"fmt"
	"math/big"
)

// ErrCRLMissing is wrapped when CRL checking is on and no CRL of a
// certificate's issuer is loaded.
var ErrCRLMissing = errors.New("unable to get certificate CRL")

// ErrCRLExpired is wrapped when the issuer's CRL is past its nextUpdate.
var ErrCRLExpired = errors.New("CRL has expired")

// LoadError is a failure to load one file or folder of key material: the
// option that names it (ssl_cert, ssl_crlpath, ...), its path, and why.
// `groupwire check` reports it at that option and path.
type LoadError struct {
	Option string // ssl_ca, ssl_capath, ssl_cert, ssl_key, ssl_crl or ssl_crlpath
	Path   string
	With   string // the other file the failure involves ("ssl_cert /x/c.pem"), if any
	Err    error
}

// Error reads like "load ssl_key /x/k.pem: no PEM block found".
func (e *LoadError) Error() string {
	if e.With != "" {
		return fmt.Sprintf("load %s %s with %s: %v", e.Option, e.Path, e.With, e.Err)
	}
	return fmt.Sprintf("load %s %s: %v", e.Option, e.Path, e.Err)
}

// Unwrap returns why the load failed.
func (e *LoadError) Unwrap() error { return e.Err }

// loadError wraps err as the failure to load option's path.
func loadError(option, path string, err error) error {
	return &LoadError{Option: option, Path: path, Err: err}
}

// RevokedError reports a revoked certificate of a chain.
type RevokedError struct {
	Subject string   // subject of the revoked certificate
	Serial  *big.Int // its serial number
	Issuer  string   // subject of the CA that revoked it
	CRL     string   // the file the CRL was loaded from
}

// Error reads like
// `certificate "CN=mysql-2" serial 0x1002 is revoked (CRL /certs/crl.pem)`.
func (e *RevokedError) Error() string {
	return fmt.Sprintf("certificate %q serial %s is revoked (CRL %s)", e.Subject, formatSerial(e.Serial), e.CRL)
}

// formatSerial prints a serial number as OpenSSL-style hex with a 0x prefix.
func formatSerial(n *big.Int) string {
	if n == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%#x", n)
}
