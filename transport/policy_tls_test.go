package transport

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport/tlsopt"
)

// TestKeyExchangeNegotiated: tls_kex decides the key exchange of a link:
// Go's default picks the hybrid post-quantum group, X25519 alone picks
// X25519.
func TestKeyExchangeNegotiated(t *testing.T) {
	p := newPKI(t, "group CA")
	c1, k1, _ := p.member("mysql-1")
	c2, k2, _ := p.member("mysql-2")
	ca := filepath.Join(p.dir, "ca.pem")
	for _, tt := range []struct {
		kex  string
		want tls.CurveID
	}{{"", tls.X25519MLKEM768}, {"X25519", tls.X25519}, {"prime256v1", tls.CurveP256}} {
		groups, err := tlsopt.ParseKeyExchange(tt.kex)
		if err != nil {
			t.Fatal(err)
		}
		server := &Policy{Channel: "group", Mode: VerifyCA, Params: TLSParams{CurvePreferences: groups}, Creds: store(t, certs.Source{CA: ca, Cert: c1, Key: k1})}
		client := &Policy{Channel: "group", Mode: VerifyCA, Params: TLSParams{CurvePreferences: groups}, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})}
		addr, results := startAcceptor(t, server)
		link, err := NewDialer(client, "mysql-2", Peer{Name: "mysql-1", Address: addr}, LinkOptions{}).Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := link.AwaitAccept(); err != nil {
			t.Fatal(err)
		}
		<-results
		link.Close()
		if got := link.TLS().CurveID; got != tt.want {
			t.Errorf("tls_kex %q negotiated %v, want %v", tt.kex, got, tt.want)
		}
	}
}

// TestTLS13SuitesEnforced: Go cannot choose TLS 1.3 suites, so
// tls_ciphersuites is enforced by refusing a handshake that negotiated
// another one, and names it.
func TestTLS13SuitesEnforced(t *testing.T) {
	p := newPKI(t, "group CA")
	c1, k1, _ := p.member("mysql-1")
	c2, k2, _ := p.member("mysql-2")
	ca := filepath.Join(p.dir, "ca.pem")
	dial := func(suites []uint16) (*Link, error) {
		server := &Policy{Channel: "group", Mode: VerifyCA, Params: TLSParams{TLS13Suites: suites}, Creds: store(t, certs.Source{CA: ca, Cert: c1, Key: k1})}
		client := &Policy{Channel: "group", Mode: VerifyCA, Params: TLSParams{TLS13Suites: suites}, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})}
		addr, results := startAcceptor(t, server)
		link, err := NewDialer(client, "mysql-2", Peer{Name: "mysql-1", Address: addr}, LinkOptions{}).Dial(context.Background())
		if err == nil {
			defer link.Close()
			err = link.AwaitAccept()
		}
		if r := <-results; err == nil {
			err = r.err
		}
		return link, err
	}
	link, err := dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	chosen := link.TLS().CipherSuite // what Go picks on this CPU
	if _, err := dial([]uint16{chosen}); err != nil {
		t.Fatalf("allowing %s: %v", tls.CipherSuiteName(chosen), err)
	}
	var others []uint16
	for _, s := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256} {
		if s != chosen {
			others = append(others, s)
		}
	}
	_, err = dial(others)
	if err == nil || !strings.Contains(err.Error(), "tls_ciphersuites does not allow "+tls.CipherSuiteName(chosen)) {
		t.Fatalf("allowing only the others: %v", err)
	}
}

// TestValidateSuitesFitKey: limited to TLS 1.2, a cipher list that no
// suite of which can use this member's key is refused at start, naming it;
// with TLS 1.3 allowed it is not (those suites do not depend on the key).
func TestValidateSuitesFitKey(t *testing.T) {
	p := newPKI(t, "group CA")
	c1, k1, _ := p.member("mysql-1") // ECDSA P-256
	sel, err := tlsopt.ResolveCipherList("ECDHE-RSA-AES128-GCM-SHA256")
	rsaOnly := sel.Suites
	if err != nil {
		t.Fatal(err)
	}
	policy := &Policy{Channel: "group", Mode: VerifyCA, Params: TLSParams{CipherSuites: rsaOnly, MaxVersion: tls.VersionTLS12},
		Creds: store(t, certs.Source{CA: filepath.Join(p.dir, "ca.pem"), Cert: c1, Key: k1})}
	if err := policy.Validate(); err == nil || !strings.Contains(err.Error(), "channel group: ssl_cipher allows no TLS 1.2 suite for an ECDSA certificate key") {
		t.Fatalf("TLS 1.2 only: %v", err)
	}
	policy.Params.MaxVersion = 0
	if err := policy.Validate(); err != nil {
		t.Fatalf("TLS 1.3 allowed: %v", err)
	}
}
