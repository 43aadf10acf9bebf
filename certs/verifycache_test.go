package certs

import (
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

var serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}

// TestVerifyCacheKeepsEveryCheck: a verification served from the cache
// still fails once the peer's certificate or a CRL expires, and a result
// for one key usage is never served for another.
func TestVerifyCacheKeepsEveryCheck(t *testing.T) {
	p := newTestPKI(t)
	src := p.writeBasic(t)
	crlNext := time.Now().Add(2 * time.Hour)
	pem, err := p.inter.CRL(nil, time.Now().Add(-time.Hour), crlNext)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.path("crl.d/inter.crl"), pem)
	writeFile(t, p.path("crl.d/root.crl"), crl(t, p.root))
	src.CRLPath = p.path("crl.d")
	snap := mustLoad(t, src)

	leaf := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-3", NotAfter: time.Now().Add(time.Hour), ServerAuthOnly: true})
	peer := []*x509.Certificate{leaf.Cert, p.inter.Cert}
	now := time.Now()
	for i := range 2 { // the second time from the cache
		if _, err := snap.VerifyPeer(peer, serverAuth, now); err != nil {
			t.Fatalf("verification %d: %v", i, err)
		}
	}
	if len(snap.verified.m) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(snap.verified.m))
	}
	if _, err := snap.VerifyPeer(peer, clientAuth, now); err == nil {
		t.Fatal("a serverAuth-only certificate passed as a client after a cached serverAuth check")
	}
	if _, err := snap.VerifyPeer(peer, serverAuth, leaf.Cert.NotAfter.Add(time.Second)); err == nil {
		t.Fatal("a cached verification outlived the peer certificate")
	}
	long := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-4"})
	longPeer := []*x509.Certificate{long.Cert, p.inter.Cert}
	if _, err := snap.VerifyPeer(longPeer, serverAuth, now); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.VerifyPeer(longPeer, serverAuth, crlNext.Add(time.Second)); err == nil {
		t.Fatal("a cached verification outlived the CRL's nextUpdate")
	}
}

// BenchmarkVerifyPeer compares a first verification with one served from
// the snapshot's cache, as on a resumed link.
func BenchmarkVerifyPeer(b *testing.B) {
	p := newTestPKI(b)
	src := p.writeBasic(b)
	writeFile(b, p.path("crl.d/inter.crl"), crl(b, p.inter))
	writeFile(b, p.path("crl.d/root.crl"), crl(b, p.root))
	src.CRLPath = p.path("crl.d")
	peer := []*x509.Certificate{p.leaf.Cert, p.inter.Cert}
	now := time.Now()
	b.Run("full", func(b *testing.B) {
		snap := mustLoad(b, src)
		snap.verified = nil
		b.ReportAllocs()
		for b.Loop() {
			if _, err := snap.VerifyPeer(peer, clientAuth, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		snap := mustLoad(b, src)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := snap.VerifyPeer(peer, clientAuth, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestVerifyCachePaddedChainsStayBounded: a peer that pads its chain with
// a different extra certificate on every handshake makes a new entry each
// time, but an entry pins only its digest and the verified chain (not the
// padding), and the whole cache stays within its bounds in entries and
// bytes.
func TestVerifyCachePaddedChainsStayBounded(t *testing.T) {
	p := newTestPKI(t)
	snap := mustLoad(t, p.writeBasic(t))
	chainCost := verifyEntryOverhead + len(p.leaf.Cert.Raw) + len(p.inter.Cert.Raw) + len(p.root.Cert.Raw)
	for i := range 20 {
		pad := p.issue(t, devpki.LeafTemplate{CommonName: fmt.Sprint("padding ", i)})
		peer := []*x509.Certificate{p.leaf.Cert, p.inter.Cert, pad.Cert}
		if _, err := snap.VerifyPeer(peer, clientAuth, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c := snap.verified
	if len(c.m) != 20 || c.bytes != 20*chainCost {
		t.Fatalf("cache holds %d entries, %d bytes; want 20 entries of the verified chain's %d bytes each", len(c.m), c.bytes, chainCost)
	}

	// Large chains: the byte bound empties the cache before it is passed.
	big := []*x509.Certificate{{Raw: make([]byte, 1<<20)}}
	until := time.Now().Add(time.Hour)
	for i := range 40 {
		c.put(verifyDigest{byte(i), 1}, big, until)
		if c.bytes > verifyCacheMaxBytes || len(c.m) > verifyCacheMax {
			t.Fatalf("after %d large entries: %d bytes in %d entries, bounds %d and %d", i+1, c.bytes, len(c.m), verifyCacheMaxBytes, verifyCacheMax)
		}
	}
	for i := range verifyCacheMax + 10 {
		c.put(verifyDigest{byte(i), byte(i >> 8), 2}, nil, until)
	}
	if len(c.m) > verifyCacheMax {
		t.Fatalf("%d entries, bound %d", len(c.m), verifyCacheMax)
	}
}
