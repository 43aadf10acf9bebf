package certs

import (
	"crypto/x509"
	"math/big"
	"slices"
	"testing"
	"time"
)

// The files an operator points ssl_cert, ssl_key, ssl_ca and ssl_crl at
// reach these parsers whole. They must never panic; what they accept must
// be usable. Seeds are made by the test's own throwaway PKI, and the
// committed corpus under testdata/fuzz holds only public material.

func FuzzParseCertsPEM(f *testing.F) {
	p := newTestPKI(f)
	f.Add(p.leaf.ChainPEM)
	f.Add(p.root.CertPEM)
	f.Add(append([]byte("# a comment\n"), p.inter.CertPEM...))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificatesPEM(data)
		if err != nil {
			return
		}
		if len(certs) == 0 {
			t.Fatal("accepted with no certificate")
		}
		for _, c := range certs {
			if c == nil || len(c.Raw) == 0 {
				t.Fatal("accepted an empty certificate")
			}
		}
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	p := newTestPKI(f)
	f.Add(p.leaf.KeyPEM)
	f.Add(p.root.KeyPEM)
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parsePrivateKeyPEM(data)
		if err == nil && (key == nil || key.Public() == nil) {
			t.Fatal("accepted a key with no public half")
		}
	})
}

// FuzzIndexCRL parses CRL files (PEM or DER, v1 or v2) against the test
// CAs: an index it builds names its issuer, and a lookup in it works.
func FuzzIndexCRL(f *testing.F) {
	p := newTestPKI(f)
	f.Add(crl(f, p.inter, big.NewInt(0x1002), big.NewInt(7)))
	f.Add(crl(f, p.root))
	if v1, err := p.inter.CRLv1([]*big.Int{big.NewInt(9)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)); err == nil {
		f.Add(v1)
	}
	cas := []*x509.Certificate{p.root.Cert, p.inter.Cert}
	f.Fuzz(func(t *testing.T, data []byte) {
		ders, err := crlDERs(data)
		if err != nil {
			return
		}
		for _, der := range ders {
			idx, err := indexCRL(der, "fuzz.crl", cas)
			if err != nil {
				continue
			}
			if idx.issuer == nil {
				t.Fatal("an index with no issuer")
			}
			checkIndexAgainstParse(t, idx, der)
		}
	})
}

// checkIndexAgainstParse holds an accepted CRL's index against crypto/x509's
// own reading of it: signed by the issuer the index names, and revoking
// exactly the serials listed, looked up as a handshake looks them up.
func checkIndexAgainstParse(t *testing.T, idx *crlIndex, der []byte) {
	t.Helper()
	var listed []*big.Int
	if rl, err := x509.ParseRevocationList(der); err == nil {
		if err := rl.CheckSignatureFrom(idx.issuer); err != nil {
			t.Fatalf("accepted a CRL its issuer %q did not sign: %v", idx.issuer.Subject, err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			listed = append(listed, e.SerialNumber)
		}
	} else {
		cl, err := x509.ParseDERCRL(der)
		if err != nil {
			t.Fatalf("accepted a CRL neither parser reads: %v", err)
		}
		if err := idx.issuer.CheckCRLSignature(cl); err != nil {
			t.Fatalf("accepted a v1 CRL its issuer %q did not sign: %v", idx.issuer.Subject, err)
		}
		for _, e := range cl.TBSCertList.RevokedCertificates {
			listed = append(listed, e.SerialNumber)
		}
	}
	distinct := map[string]bool{}
	for _, n := range listed {
		if !idx.revokes(n) {
			t.Fatalf("serial %s is listed but not found revoked", formatSerial(n))
		}
		distinct[n.String()] = true
		if next := new(big.Int).Add(n, big.NewInt(1)); !slices.ContainsFunc(listed, func(x *big.Int) bool { return x.Cmp(next) == 0 }) && idx.revokes(next) {
			t.Fatalf("serial %s is found revoked but not listed", formatSerial(next))
		}
	}
	if len(idx.revoked) != len(distinct) {
		t.Fatalf("the index holds %d serials, the CRL lists %d", len(idx.revoked), len(distinct))
	}
}

// FuzzParseFetchedCRL feeds what a distribution point could send to the
// fetched CRL's parse-and-verify step: anything it accepts is a CRL the
// issuer really signed, naming the issuer, with a nextUpdate.
func FuzzParseFetchedCRL(f *testing.F) {
	p := newTestPKI(f)
	f.Add(crl(f, p.inter, big.NewInt(0x1002), big.NewInt(7)))
	f.Add(crl(f, p.root))
	f.Add([]byte{0x30, 0x82, 0x01})
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseFetchedCRL(data, "http://ca.test/inter.crl", p.inter.Cert, now)
		if err != nil {
			return
		}
		der, derr := oneCRLDER(data)
		rl, perr := x509.ParseRevocationList(der)
		if derr != nil || perr != nil || rl.CheckSignatureFrom(p.inter.Cert) != nil {
			t.Fatal("accepted a CRL its issuer did not sign")
		}
		if got.idx.nextUpdate.IsZero() || got.idx.issuer != p.inter.Cert || got.idx.critical != "" {
			t.Fatalf("accepted an unusable CRL: %+v", got.idx)
		}
	})
}
