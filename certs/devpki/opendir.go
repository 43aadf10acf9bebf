package devpki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// OpenDir loads the CA of a folder made by Init: the certificate from
// ca.pem and its key from ca-key.pem. If ca.pem holds more certificates
// after the first, they become the Parent chain (without keys).
func OpenDir(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CAFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, err
	}
	key, keyPEM, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !certs[0].IsCA {
		return nil, fmt.Errorf("devpki: load %s: first certificate %q is not a CA", certPath, certs[0].Subject.CommonName)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(certs[0].PublicKey) {
		return nil, fmt.Errorf("devpki: load %s: key does not match the certificate %q in %s", keyPath, certs[0].Subject.CommonName, certPath)
	}
	var parent *CA
	for i := len(certs) - 1; i >= 1; i-- {
		parent = &CA{Cert: certs[i], CertPEM: encodeCert(certs[i]), Parent: parent}
	}
	return &CA{Cert: certs[0], Key: key, CertPEM: encodeCert(certs[0]), KeyPEM: keyPEM, Parent: parent}, nil
}

// readCerts parses every CERTIFICATE block of a PEM file; there must be
// at least one.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devpki: load CA certificate: %w", err)
	}
	var certs []*x509.Certificate
	for i := 0; ; i++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("devpki: load %s: PEM block %d: %w", path, i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("devpki: load %s: no PEM CERTIFICATE block", path)
	}
	return certs, nil
}

// readKey parses the first private key block of a PEM file (PKCS #8, SEC 1
// EC or PKCS #1 RSA) and returns it with its PEM bytes.
func readKey(path string) (crypto.Signer, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: load CA key: %w", err)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, nil, fmt.Errorf("devpki: load %s: no PEM private key block", path)
		}
		var key any
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("devpki: load %s: %s block: %w", path, b.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, nil, fmt.Errorf("devpki: load %s: key type %T cannot sign", path, key)
		}
		return signer, pem.EncodeToMemory(b), nil
	}
}

// encodeCert returns c as a PEM CERTIFICATE block.
func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
