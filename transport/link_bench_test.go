package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
)

// benchPolicies returns mysql-2's (dialing) and mysql-1's (accepting)
// VERIFY_IDENTITY policies with a CRL, as bench/run.sh's gw-verify pair runs.
func benchPolicies(b *testing.B, curves []tls.CurveID) (dialer, acceptor *Policy) {
	b.Helper()
	p := newPKI(b, "bench CA")
	ca, crl := filepath.Join(p.dir, "ca.pem"), p.crl("crl.pem")
	policy := func(member string) *Policy {
		cert, key, _ := p.member(member)
		st := store(b, certs.Source{CA: ca, CRL: crl, Cert: cert, Key: key})
		return &Policy{Channel: "group", Mode: VerifyIdentity, Creds: st, Params: TLSParams{MinVersion: tls.VersionTLS13, CurvePreferences: curves}}
	}
	return policy("mysql-2"), policy("mysql-1")
}

// benchmarkLinkSetup opens links from mysql-2 to mysql-1 over loopback,
// each with HELLO, ACCEPT and a 4-byte echo, as a sidecar does per new
// member connection; TLS sessions are resumed after the first.
func benchmarkLinkSetup(b *testing.B, curves []tls.CurveID, want tls.CurveID) {
	dp, ap := benchPolicies(b, curves)
	addr, _ := startAcceptor(b, ap)
	d := NewDialer(dp, "mysql-2", Peer{Name: "mysql-1", Address: addr, Identity: "mysql-1"}, LinkOptions{HandshakeTimeout: 5 * time.Second})
	buf := make([]byte, 4)
	resumed := 0
	b.ReportAllocs()
	for b.Loop() {
		didResume, err := oneLink(d, buf, want)
		if err != nil {
			b.Fatal(err)
		}
		if didResume {
			resumed++
		}
	}
	b.ReportMetric(float64(resumed)/float64(b.N), "resumed/op")
}

// oneLink dials, checks the key exchange, sends 4 bytes, awaits ACCEPT
// and the echo, and closes the link whatever happened.
func oneLink(d *Dialer, buf []byte, want tls.CurveID) (bool, error) {
	link, err := d.Dial(context.Background())
	if err != nil {
		return false, err
	}
	defer link.Close()
	if link.TLS().CurveID != want {
		return false, fmt.Errorf("key exchange %s, want %s", link.TLS().CurveID, want)
	}
	if _, err := link.Conn.Write(buf); err != nil {
		return false, err
	}
	if err := link.AwaitAccept(); err != nil {
		return false, err
	}
	if _, err := io.ReadFull(link.Conn, buf); err != nil {
		return false, err
	}
	return link.TLS().DidResume, nil
}

// BenchmarkLinkSetupX25519 offers X25519 alone; BenchmarkLinkSetupMLKEM
// offers Go's default set, where the hybrid X25519MLKEM768 wins (Go
// ignores the order of CurvePreferences: only leaving a group out changes
// the choice). Both sides' CPU is in ns/op (they share the process).
func BenchmarkLinkSetupX25519(b *testing.B) {
	benchmarkLinkSetup(b, []tls.CurveID{tls.X25519}, tls.X25519)
}

// BenchmarkLinkSetupMLKEM: see BenchmarkLinkSetupX25519.
func BenchmarkLinkSetupMLKEM(b *testing.B) {
	benchmarkLinkSetup(b, nil, tls.X25519MLKEM768)
}
