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
