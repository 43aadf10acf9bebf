package devpki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// crlValidity is the default span from thisUpdate to nextUpdate.
const crlValidity = 30 * 24 * time.Hour

// CRL makes a v2 CRL signed by ca listing the revoked serials, each with
// revocation time thisUpdate, and returns it as a PEM "X509 CRL" block.
// Each call takes the next CRL number of ca (1, 2, ...). A zero thisUpdate
// means now; a zero nextUpdate means thisUpdate+30 days.
func (ca *CA) CRL(revoked []*big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if thisUpdate.IsZero() {
		thisUpdate = time.Now()
	}
	if nextUpdate.IsZero() {
		nextUpdate = thisUpdate.Add(crlValidity)
	}
	tmpl := &x509.RevocationList{ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	return ca.CRLFrom(tmpl)
}

// CRLFrom signs a v2 CRL from a caller-made template, for CRLs CRL cannot
// express: per-entry revocation times or reason codes, extra (critical)
// extensions. A nil tmpl.Number takes ca's next CRL number. It returns a
// PEM "X509 CRL" block.
func (ca *CA) CRLFrom(tmpl *x509.RevocationList) ([]byte, error) {
	if ca.Key == nil {
		return nil, fmt.Errorf("devpki: CRL of %q: CA has no private key", ca.Cert.Subject.CommonName)
	}
	t := *tmpl
	if t.Number == nil {
		t.Number = ca.nextCRLNumber()
	}
	der, err := x509.CreateRevocationList(rand.Reader, &t, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("devpki: CRL number %s of %q: %w", t.Number, ca.Cert.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
