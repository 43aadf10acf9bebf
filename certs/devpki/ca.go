package devpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// Validity periods of the CAs made here.
const (
	rootValidity         = 10 * 365 * 24 * time.Hour
	intermediateValidity = 5 * 365 * 24 * time.Hour
	backdate             = time.Hour // NotBefore is set this far in the past, against clock skew
)

// CA is a certificate authority: its certificate, its private key and the
// CA above it. A CA is safe for concurrent use.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Key signs certificates and CRLs. It is nil for a parent CA loaded
	// from a ca.pem without its key.
	Key crypto.Signer
	// CertPEM is Cert as a PEM "CERTIFICATE" block.
	CertPEM []byte
	// KeyPEM is Key as a PEM "PRIVATE KEY" (PKCS #8) block, or nil when
	// Key is nil.
	KeyPEM []byte
	// Parent is the CA that signed this one, or nil for a root.
	Parent *CA

	mu        sync.Mutex // guards crlNumber
	crlNumber int64      // number of the last CRL numbered by ca; 0 before the first
}

// NewRootCA makes a self-signed root CA valid for 10 years, with key usage
// certSign|cRLSign.
func NewRootCA(commonName string) (*CA, error) {
	ca, err := newCA(commonName, nil, rootValidity)
	if err != nil {
		return nil, fmt.Errorf("devpki: new root CA %q: %w", commonName, err)
	}
	return ca, nil
}

// NewIntermediate makes a CA signed by ca, valid for 5 years but never
// past ca's own NotAfter, naming crlURLs (if any) as the distribution
// points of ca's CRL.
func (ca *CA) NewIntermediate(commonName string, crlURLs ...string) (*CA, error) {
	if ca.Key == nil {
		return nil, fmt.Errorf("devpki: new intermediate %q: CA %q has no private key", commonName, ca.Cert.Subject.CommonName)
	}
	sub, err := newCA(commonName, ca, intermediateValidity, crlURLs...)
	if err != nil {
		return nil, fmt.Errorf("devpki: new intermediate %q under %q: %w", commonName, ca.Cert.Subject.CommonName, err)
	}
	return sub, nil
}

func newCA(commonName string, parent *CA, validity time.Duration, crlURLs ...string) (*CA, error) {
	if commonName == "" {
		return nil, fmt.Errorf("empty common name")
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		CRLDistributionPoints: crlURLs,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
		if tmpl.NotAfter.After(parent.Cert.NotAfter) {
			tmpl.NotAfter = parent.Cert.NotAfter
		}
	}
	cert, certPEM, err := createCertificate(tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM, Parent: parent}, nil
}

// ChainPEM returns this CA's certificate followed by those of its parents
// up to and including the root, as concatenated PEM blocks (the content of
// a ca.pem that holds several certificates).
func (ca *CA) ChainPEM() []byte {
	var b bytes.Buffer
	for c := ca; c != nil; c = c.Parent {
		b.Write(c.CertPEM)
	}
	return b.Bytes()
}

// Root returns the root CA above ca, or ca itself for a root.
func (ca *CA) Root() *CA {
	c := ca
	for c.Parent != nil {
		c = c.Parent
	}
	return c
}

// CertPool returns a new pool holding only ca's certificate.
func (ca *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// nextCRLNumber returns the next CRL number of ca, starting at 1.
func (ca *CA) nextCRLNumber() *big.Int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.crlNumber++
	return big.NewInt(ca.crlNumber)
}

// newKey makes an ECDSA P-256 key and its PKCS #8 PEM encoding.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate P-256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal private key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// randomSerial returns a random positive serial number of at most 128 bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// createCertificate signs tmpl and returns it parsed and as PEM.
func createCertificate(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
