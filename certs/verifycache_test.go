package certs

import (
	"crypto/x509"
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
