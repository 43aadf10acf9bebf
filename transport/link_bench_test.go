package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/certs/devpki"
)

// benchPolicy writes a CA and member certificates (ECDSA P-256) for
// mysql-1 and mysql-2 and returns each member's VERIFY_IDENTITY policy
// with a CRL, as bench/run.sh's gw-verify pair runs.
func benchPolicies(b *testing.B, curves []tls.CurveID) (dialer, acceptor *Policy) {
	b.Helper()
	ca, err := devpki.NewRootCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		return path
	}
	caPath := write("ca.pem", ca.CertPEM)
	crl, err := ca.CRL(nil, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	crlPath := write("crl.pem", crl)
	policy := func(member string) *Policy {
		leaf, err := ca.Issue(devpki.LeafTemplate{CommonName: member, DNSNames: []string{member}})
		if err != nil {
			b.Fatal(err)
		}
		src := certs.Source{CA: caPath, CRL: crlPath, Cert: write(member+".pem", leaf.ChainPEM), Key: write(member+"-key.pem", leaf.KeyPEM)}
		st, err := certs.NewStore("bench "+member, src)
		if err != nil {
			b.Fatal(err)
		}
		return &Policy{Channel: "group", Mode: VerifyIdentity, Creds: st, MinVersion: tls.VersionTLS13, CurvePreferences: curves}
	}
	return policy("mysql-2"), policy("mysql-1")
}

// benchmarkLinkSetup opens links from mysql-2 to mysql-1 over loopback,
// each with HELLO, ACCEPT and a 4-byte echo, as a sidecar does per new
// member connection; TLS sessions are resumed after the first.
func benchmarkLinkSetup(b *testing.B, curves []tls.CurveID, want tls.CurveID) {
	dp, ap := benchPolicies(b, curves)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	a := NewAcceptor("mysql-1", []*Policy{ap}, map[string]string{"mysql-1": "mysql-1", "mysql-2": "mysql-2"}, LinkOptions{HandshakeTimeout: 5 * time.Second})
	done := make(chan struct{})
	b.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			link, err := a.Accept(context.Background(), c.(*net.TCPConn))
			if err != nil {
				continue
			}
			if err := link.Accept(); err != nil {
				link.Close()
				continue
			}
			_, _ = io.Copy(link.Conn, link.Conn) // echo until the dialer closes
			link.Close()
		}
	}()
	d := NewDialer(dp, "mysql-2", Peer{Name: "mysql-1", Address: ln.Addr().String(), Identity: "mysql-1"}, LinkOptions{HandshakeTimeout: 5 * time.Second})
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
	if link.TLS.CurveID != want {
		return false, fmt.Errorf("key exchange %s, want %s", link.TLS.CurveID, want)
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
	return link.TLS.DidResume, nil
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
