package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Load reads and validates every file of src into a new snapshot. Any
// problem is an error naming the option and the file, for example
// "load ssl_key /x/k.pem: private key does not match certificate /x/c.pem".
// Empty fields of src are skipped; an empty Source gives an empty snapshot.
func Load(src Source) (*Snapshot, error) {
	d := newDigester()
	snap := &Snapshot{verified: newVerifyCache()}

	cert, err := loadKeyPair(src.Cert, src.Key, d)
	if err != nil {
		return nil, err
	}
	snap.Cert = cert

	cas, err := loadCAs(src.CA, src.CAPath, d)
	if err != nil {
		return nil, err
	}
	if len(cas) > 0 {
		snap.Roots = x509.NewCertPool()
		snap.Intermediates = x509.NewCertPool()
		for _, ca := range cas {
			if isSelfSigned(ca) {
				snap.Roots.AddCert(ca)
			} else {
				snap.Intermediates.AddCert(ca)
			}
		}
	}

	crls, err := loadCRLs(src.CRL, src.CRLPath, cas, d)
	if err != nil {
		return nil, err
	}
	snap.CRLs = crls

	snap.Digest = d.sum()
	snap.LoadedAt = time.Now()
	return snap, nil
}

// loadCAs reads ssl_ca and every CA file of ssl_capath, deduplicated by
// DER content, in a stable order (ssl_ca first, then capath by name).
func loadCAs(caFile, caPath string, d *digester) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	seen := make(map[string]bool)
	add := func(option, path string) error {
		certs, err := readParsed(option, path, d, ParseCertificatesPEM)
		if err != nil {
			return err
		}
		for _, c := range certs {
			if !seen[string(c.Raw)] {
				seen[string(c.Raw)] = true
				out = append(out, c)
			}
		}
		return nil
	}
	if err := fileAndDir("ssl_ca", caFile, "ssl_capath", caPath, hashedCertName, []string{".pem", ".crt"}, add); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of data. Other
// block types (a stray key, parameters) are skipped; a truncated block or
// no certificate at all is an error.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for n := 1; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if err := checkPEMRest(rest); err != nil {
				return nil, err
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate #%d: %w", n, err)
		}
		out = append(out, c)
		n++
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

// checkPEMRest returns an error if what pem.Decode left over still holds a
// BEGIN line: a truncated (half-written) or corrupt block, which must not
// be skipped silently, or a chain could lose its intermediate.
func checkPEMRest(rest []byte) error {
	if i := bytes.Index(rest, []byte("-----BEGIN")); i >= 0 {
		line, _, _ := bytes.Cut(rest[i:], []byte("\n"))
		return fmt.Errorf("truncated or malformed PEM block %q", bytes.TrimSpace(line))
	}
	return nil
}

// isSelfSigned reports whether c is its own issuer, by name and signature.
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
