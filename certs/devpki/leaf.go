package devpki

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// leafValidity is the default lifetime of a leaf certificate.
const leafValidity = 365 * 24 * time.Hour

// LeafTemplate describes a leaf (end-entity) certificate to issue.
type LeafTemplate struct {
	// CommonName is the subject CN.
	CommonName string
	// DNSNames are the DNS subject alternative names.
	DNSNames []string
	// IPs are the IP subject alternative names.
	IPs []net.IP
	// NotBefore and NotAfter bound the validity; a zero NotBefore means
	// now-1h and a zero NotAfter means now+1y. They are not clamped to the
	// CA's validity, so tests can make expired or odd certificates.
	NotBefore, NotAfter time.Time
	// ServerAuthOnly gives the extended key usage serverAuth only (as ACME
	// CAs issue); by default it is serverAuth+clientAuth.
	ServerAuthOnly bool
	// Serial is the serial number; nil means a random 128-bit number.
	Serial *big.Int
	// URIs are the URI subject alternative names (a SPIFFE ID).
	URIs []*url.URL
	// CRLDistributionPoints are URLs where the issuer's CRL is published.
	CRLDistributionPoints []string
}

// Leaf is an issued end-entity certificate with its key.
type Leaf struct {
	// Cert is the leaf certificate.
	Cert *x509.Certificate
	// Key is its ECDSA P-256 private key.
	Key crypto.Signer
	// CertPEM is the leaf certificate alone as PEM.
	CertPEM []byte
	// KeyPEM is Key as a PEM "PRIVATE KEY" (PKCS #8) block.
	KeyPEM []byte
	// ChainPEM is the leaf followed by the intermediate CAs up to, but not
	// including, the root: the content of an ssl_cert file.
	ChainPEM []byte
}

// Issue signs a new leaf certificate with a fresh key.
func (ca *CA) Issue(t LeafTemplate) (*Leaf, error) {
	leaf, err := ca.issue(t)
	if err != nil {
		return nil, fmt.Errorf("devpki: issue %q by %q: %w", t.CommonName, ca.Cert.Subject.CommonName, err)
	}
	return leaf, nil
}

func (ca *CA) issue(t LeafTemplate) (*Leaf, error) {
	if ca.Key == nil {
		return nil, fmt.Errorf("CA has no private key")
	}
	if t.CommonName == "" && len(t.DNSNames) == 0 && len(t.IPs) == 0 && len(t.URIs) == 0 {
		return nil, fmt.Errorf("template has no common name, DNS name or IP")
	}
	now := time.Now()
	notBefore, notAfter := t.NotBefore, t.NotAfter
	if notBefore.IsZero() {
		notBefore = now.Add(-backdate)
	}
	if notAfter.IsZero() {
		notAfter = now.Add(leafValidity)
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("NotAfter %s is not after NotBefore %s", notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	serial := t.Serial
	if serial == nil {
		var err error
		if serial, err = randomSerial(); err != nil {
			return nil, err
		}
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if t.ServerAuthOnly {
		usages = usages[:1]
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: t.CommonName},
		DNSNames:              t.DNSNames,
		IPAddresses:           t.IPs,
		URIs:                  t.URIs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usages,
		BasicConstraintsValid: true,
		CRLDistributionPoints: t.CRLDistributionPoints,
	}
	cert, certPEM, err := createCertificate(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	var chain bytes.Buffer
	chain.Write(certPEM)
	for c := ca; c.Parent != nil; c = c.Parent {
		chain.Write(c.CertPEM)
	}
	return &Leaf{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM, ChainPEM: chain.Bytes()}, nil
}

// TLSCertificate returns the leaf with its intermediates and key as a
// tls.Certificate (Leaf field set), ready for tls.Config.Certificates.
func (l *Leaf) TLSCertificate() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(l.ChainPEM, l.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("devpki: key pair of %q: %w", l.Cert.Subject.CommonName, err)
	}
	return c, nil
}
