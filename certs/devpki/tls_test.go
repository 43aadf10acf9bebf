package devpki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"testing"
	"time"
)

// TestMutualTLS runs a real mutual-TLS handshake over loopback with leaves
// of an intermediate, proving the PEMs work as tls key material.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	serverLeaf, err := p.inter.Issue(LeafTemplate{CommonName: "server", DNSNames: []string{"server"}})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := serverLeaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := p.interLeaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	roots := p.root.CertPool()

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(c, io.LimitReader(c, 4))
		done <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{Certificates: []tls.Certificate{clientCert}, RootCAs: roots, ServerName: "server"}}
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	peer := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peer) != 2 || !peer[1].Equal(p.inter.Cert) {
		t.Errorf("server sent %d certs, want leaf and intermediate", len(peer))
	}

	// A client of an unrelated CA is refused.
	other, err := NewRootCA("stranger")
	if err != nil {
		t.Fatal(err)
	}
	strangerLeaf, err := other.Issue(LeafTemplate{CommonName: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	strangerCert, err := strangerLeaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		done <- c.(*tls.Conn).Handshake()
	}()
	// GetClientCertificate sends the certificate even though the server's
	// acceptable-CA list does not name its issuer.
	d2 := tls.Dialer{Config: &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &strangerCert, nil },
		RootCAs:              roots, ServerName: "server",
	}}
	c2, err := d2.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c2.Read(make([]byte, 1)) // TLS 1.3: the alert arrives at the first read
		c2.Close()
	}
	if err == nil {
		t.Error("client with a stranger's certificate was served")
	}
	var uae x509.UnknownAuthorityError
	if serr := <-done; !errors.As(serr, &uae) {
		t.Errorf("server handshake error %v, want x509.UnknownAuthorityError", serr)
	}
}
