package devpki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// pki is a root, an intermediate under it, and a leaf of each.
type pki struct {
	root, inter         *CA
	rootLeaf, interLeaf *Leaf
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	root, err := NewRootCA("test root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("test intermediate")
	if err != nil {
		t.Fatal(err)
	}
	rootLeaf, err := root.Issue(LeafTemplate{CommonName: "mysql-1", DNSNames: []string{"mysql-1"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	interLeaf, err := inter.Issue(LeafTemplate{CommonName: "mysql-2", DNSNames: []string{"mysql-2"}})
	if err != nil {
		t.Fatal(err)
	}
	return &pki{root: root, inter: inter, rootLeaf: rootLeaf, interLeaf: interLeaf}
}

// parsePEMCerts parses every CERTIFICATE block of data, in order.
func parsePEMCerts(t testing.TB, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			t.Fatalf("PEM block type %q, want CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(data)) != 0 {
		t.Fatalf("trailing non-PEM data %q", data)
	}
	return out
}

func TestRootCA(t *testing.T) {
	p := newPKI(t)
	c := p.root.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("root IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; c.KeyUsage != want {
		t.Errorf("root KeyUsage = %v, want %v", c.KeyUsage, want)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if life := c.NotAfter.Sub(time.Now()); life < 9*365*24*time.Hour || life > 10*366*24*time.Hour {
		t.Errorf("root lifetime %v, want about 10 years", life)
	}
	if p.root.Parent != nil || p.root.Root() != p.root {
		t.Error("root has a parent")
	}
	if _, err := NewRootCA(""); err == nil {
		t.Error("NewRootCA with empty name succeeded")
	}
}

func TestChainsVerify(t *testing.T) {
	p := newPKI(t)
	roots := p.root.CertPool()
	inters := p.inter.CertPool()
	tests := []struct {
		name  string
		leaf  *Leaf
		chain int
		dns   string
	}{
		{"leaf of root", p.rootLeaf, 2, "mysql-1"},
		{"leaf of intermediate", p.interLeaf, 3, "mysql-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				chains, err := tc.leaf.Cert.Verify(x509.VerifyOptions{
					DNSName: tc.dns, Roots: roots, Intermediates: inters,
					KeyUsages: []x509.ExtKeyUsage{usage},
				})
				if err != nil {
					t.Fatalf("verify for usage %v: %v", usage, err)
				}
				if len(chains[0]) != tc.chain {
					t.Errorf("chain length %d, want %d", len(chains[0]), tc.chain)
				}
			}
			// Without the intermediate in the pool, only the root's leaf verifies.
			_, err := tc.leaf.Cert.Verify(x509.VerifyOptions{Roots: roots})
			if (err == nil) != (tc.chain == 2) {
				t.Errorf("verify without intermediates: err=%v", err)
			}
		})
	}
	if _, err := p.rootLeaf.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other"}); err == nil {
		t.Error("verify against a wrong DNS name succeeded")
	}
	if _, err := p.rootLeaf.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("verify against IP SAN: %v", err)
	}
	other, err := NewRootCA("other root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rootLeaf.Cert.Verify(x509.VerifyOptions{Roots: other.CertPool()}); err == nil {
		t.Error("verify against an unrelated root succeeded")
	}
}

func TestLeafEKU(t *testing.T) {
	root, err := NewRootCA("eku root")
	if err != nil {
		t.Fatal(err)
	}
	both, err := root.Issue(LeafTemplate{CommonName: "both"})
	if err != nil {
		t.Fatal(err)
	}
	want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if got := both.Cert.ExtKeyUsage; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("default EKU %v, want %v", got, want)
	}
	srv, err := root.Issue(LeafTemplate{CommonName: "server", ServerAuthOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Cert.ExtKeyUsage; len(got) != 1 || got[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ServerAuthOnly EKU %v, want [serverAuth]", got)
	}
	_, err = srv.Cert.Verify(x509.VerifyOptions{Roots: root.CertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err == nil {
		t.Error("serverAuth-only leaf verified for clientAuth")
	}
	if srv.Cert.IsCA {
		t.Error("leaf is a CA")
	}
	if srv.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf KeyUsage %v, want digitalSignature", srv.Cert.KeyUsage)
	}
}

func TestLeafTemplateFields(t *testing.T) {
	root, err := NewRootCA("tmpl root")
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	na := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := root.Issue(LeafTemplate{CommonName: "old", NotBefore: nb, NotAfter: na, Serial: big.NewInt(4242)})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Cert.NotBefore.Equal(nb) || !l.Cert.NotAfter.Equal(na) {
		t.Errorf("validity %v..%v, want %v..%v", l.Cert.NotBefore, l.Cert.NotAfter, nb, na)
	}
	if l.Cert.SerialNumber.Int64() != 4242 {
		t.Errorf("serial %v, want 4242", l.Cert.SerialNumber)
	}
	_, err = l.Cert.Verify(x509.VerifyOptions{Roots: root.CertPool()})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("verify of expired leaf: err=%v, want expired", err)
	}

	a, err := root.Issue(LeafTemplate{CommonName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := root.Issue(LeafTemplate{CommonName: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Cert.SerialNumber.Cmp(b.Cert.SerialNumber) == 0 {
		t.Error("two random serials are equal")
	}
	if a.Cert.SerialNumber.BitLen() > 128 || a.Cert.SerialNumber.Sign() <= 0 {
		t.Errorf("random serial %v not a positive 128-bit number", a.Cert.SerialNumber)
	}
	if life := a.Cert.NotAfter.Sub(time.Now()); life < 364*24*time.Hour || life > 366*24*time.Hour {
		t.Errorf("default leaf lifetime %v, want 1 year", life)
	}
	if d := time.Since(a.Cert.NotBefore); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("default NotBefore %v ago, want 1h", d)
	}

	if _, err := root.Issue(LeafTemplate{CommonName: "bad", NotBefore: na, NotAfter: nb}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("inverted validity: err=%v, want an error naming the leaf", err)
	}
	if _, err := root.Issue(LeafTemplate{}); err == nil {
		t.Error("empty template was issued")
	}
}

func TestChainPEM(t *testing.T) {
	p := newPKI(t)
	chain := parsePEMCerts(t, p.inter.ChainPEM())
	if len(chain) != 2 || !chain[0].Equal(p.inter.Cert) || !chain[1].Equal(p.root.Cert) {
		t.Errorf("intermediate ChainPEM has %d certs, want intermediate then root", len(chain))
	}
	if got := parsePEMCerts(t, p.root.ChainPEM()); len(got) != 1 || !got[0].Equal(p.root.Cert) {
		t.Error("root ChainPEM is not just the root")
	}
	leafChain := parsePEMCerts(t, p.interLeaf.ChainPEM)
	if len(leafChain) != 2 || !leafChain[0].Equal(p.interLeaf.Cert) || !leafChain[1].Equal(p.inter.Cert) {
		t.Errorf("leaf ChainPEM has %d certs, want leaf then intermediate (no root)", len(leafChain))
	}
	if got := parsePEMCerts(t, p.rootLeaf.ChainPEM); len(got) != 1 {
		t.Errorf("leaf-of-root ChainPEM has %d certs, want 1", len(got))
	}
	if got := parsePEMCerts(t, p.interLeaf.CertPEM); len(got) != 1 || !got[0].Equal(p.interLeaf.Cert) {
		t.Error("leaf CertPEM is not the leaf alone")
	}
	if p.inter.Root() != p.root {
		t.Error("intermediate's Root is not the root")
	}
	if p.inter.Cert.NotAfter.After(p.root.Cert.NotAfter) {
		t.Error("intermediate outlives its root")
	}
}
