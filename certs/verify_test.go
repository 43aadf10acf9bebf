package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

var clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}

func TestVerifyPeer(t *testing.T) {
	p := newTestPKI(t)
	writeFile(t, p.path("crl.d/root.crl"), crl(t, p.root))
	writeFile(t, p.path("crl.d/inter.crl"), crl(t, p.inter))
	src := p.writeBasic(t)
	src.CRLPath = p.path("crl.d")
	snap := mustLoad(t, src)
	now := time.Now()

	t.Run("good peer, chain as sent", func(t *testing.T) {
		chain, err := snap.VerifyPeer([]*x509.Certificate{p.leaf.Cert, p.inter.Cert}, clientAuth, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 3 || !chain[2].Equal(p.root.Cert) {
			t.Errorf("chain of %d certificates, want leaf→intermediate→root", len(chain))
		}
	})
	t.Run("expired leaf", func(t *testing.T) {
		notAfter := now.Add(-2 * time.Hour).UTC().Truncate(time.Second)
		old := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-old", NotBefore: now.Add(-48 * time.Hour), NotAfter: notAfter})
		_, err := snap.VerifyPeer([]*x509.Certificate{old.Cert}, clientAuth, now)
		var inv x509.CertificateInvalidError
		if !errors.As(err, &inv) || inv.Reason != x509.Expired {
			t.Fatalf("err = %v, want x509 Expired", err)
		}
		for _, w := range []string{`verify peer "CN=mysql-old"`, "expired", notAfter.Format(time.RFC3339)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("err %q does not contain %q", err, w)
			}
		}
	})
	t.Run("leaf of another CA", func(t *testing.T) {
		other, err := devpki.NewRootCA("other root")
		if err != nil {
			t.Fatal(err)
		}
		stranger, err := other.Issue(devpki.LeafTemplate{CommonName: "stranger"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = snap.VerifyPeer([]*x509.Certificate{stranger.Cert, other.Cert}, clientAuth, now)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || !strings.Contains(err.Error(), `"CN=stranger"`) {
			t.Fatalf("err = %v, want unknown authority naming CN=stranger", err)
		}
	})
	t.Run("serverAuth-only leaf as a client", func(t *testing.T) {
		srv := p.issue(t, devpki.LeafTemplate{CommonName: "acme-like", ServerAuthOnly: true})
		_, err := snap.VerifyPeer([]*x509.Certificate{srv.Cert}, clientAuth, now)
		var inv x509.CertificateInvalidError
		if !errors.As(err, &inv) || inv.Reason != x509.IncompatibleUsage {
			t.Fatalf("err = %v, want incompatible usage", err)
		}
		if _, err := snap.VerifyPeer([]*x509.Certificate{srv.Cert}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, now); err != nil {
			t.Errorf("as a server: %v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		writeFile(t, p.path("crl.d/inter.crl"), crl(t, p.inter, big.NewInt(0x1002)))
		revSnap := mustLoad(t, src)
		_, err := revSnap.VerifyPeer([]*x509.Certificate{p.leaf.Cert}, clientAuth, now)
		var rev *RevokedError
		if !errors.As(err, &rev) || !strings.HasPrefix(err.Error(), `verify peer "CN=mysql-2" serial 0x1002: certificate "CN=mysql-2"`) {
			t.Fatalf("err = %v, want revoked", err)
		}
		writeFile(t, p.path("crl.d/inter.crl"), crl(t, p.inter))
	})
	t.Run("no roots", func(t *testing.T) {
		_, err := (&Snapshot{}).VerifyPeer([]*x509.Certificate{p.leaf.Cert}, clientAuth, now)
		if err == nil || !strings.Contains(err.Error(), "no ssl_ca or ssl_capath configured") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no certificate", func(t *testing.T) {
		if _, err := snap.VerifyPeer(nil, clientAuth, now); err == nil {
			t.Fatal("no error for an empty peer chain")
		}
	})
}

func TestCRLErrorRank(t *testing.T) {
	revoked := &RevokedError{Subject: "CN=x", Serial: big.NewInt(1)}
	missing := fmt.Errorf("%w for x", ErrCRLMissing)
	expired := fmt.Errorf("%w: x", ErrCRLExpired)
	if !(crlErrorRank(revoked) > crlErrorRank(expired) && crlErrorRank(expired) > crlErrorRank(missing)) {
		t.Error("want revoked > expired > missing")
	}
}

// TestVerifyPeerInTLSHandshake runs VerifyPeer from VerifyConnection over
// real loopback TLS, as transport does, and checks that a revoked client is
// refused while a good one gets through.
func TestVerifyPeerInTLSHandshake(t *testing.T) {
	p := newTestPKI(t)
	revokedLeaf := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-9", Serial: big.NewInt(0x1009)})
	writeFile(t, p.path("crl.pem"), append(crl(t, p.root), crl(t, p.inter, big.NewInt(0x1009))...))
	src := p.writeBasic(t)
	src.CRL = p.path("crl.pem")
	snap := mustLoad(t, src)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverCfg := &tls.Config{
		Certificates: []tls.Certificate{*snap.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS12, // refusal shows up in the client's Handshake
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := snap.VerifyPeer(cs.PeerCertificates, clientAuth, time.Now())
			return err
		},
	}
	serverErrs := make(chan error, 2)
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				serverErrs <- err
				return
			}
			tc := tls.Server(c, serverCfg)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			serverErrs <- tc.Handshake()
			tc.Close()
		}
	}()

	dial := func(leaf *devpki.Leaf) error {
		pair, err := leaf.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d := tls.Dialer{Config: &tls.Config{
			Certificates: []tls.Certificate{pair},
			RootCAs:      snap.Roots,
			VerifyConnection: func(cs tls.ConnectionState) error {
				_, err := snap.VerifyPeer(cs.PeerCertificates, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, time.Now())
				return err
			},
			InsecureSkipVerify: true,
		}}
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(p.leaf); err != nil {
		t.Fatalf("good client: %v", err)
	}
	if err := <-serverErrs; err != nil {
		t.Fatalf("server refused a good client: %v", err)
	}
	if err := dial(revokedLeaf); err == nil {
		t.Fatal("revoked client got through")
	}
	err = <-serverErrs
	var rev *RevokedError
	if !errors.As(err, &rev) || rev.Subject != "CN=mysql-9" {
		t.Fatalf("server error = %v, want mysql-9 revoked", err)
	}
}
