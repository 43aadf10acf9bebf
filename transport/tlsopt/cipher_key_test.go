package tlsopt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a throwaway certificate for key.
func selfSigned(t *testing.T, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "suites-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"suites-test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// handshake12 runs a TLS 1.2 handshake over loopback TCP with the server
// and client limited to suites (both ends of a link share the policy), and
// returns the client's error.
func handshake12(t *testing.T, cert tls.Certificate, suites []uint16) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		srv := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, CipherSuites: suites, MaxVersion: tls.VersionTLS12})
		_ = srv.Handshake()
	}()
	defer func() { <-done }()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cli := tls.Client(c, &tls.Config{InsecureSkipVerify: true, CipherSuites: suites, MaxVersion: tls.VersionTLS12})
	return cli.Handshake()
}

func TestSuitesMatchKeyAgreesWithHandshake(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaOnly := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_AES_128_GCM_SHA256}
	ecdsaOnly := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
	both := append(append([]uint16{}, rsaOnly...), ecdsaOnly...)
	tests := []struct {
		name    string
		key     crypto.Signer
		suites  []uint16
		wantErr string
	}{
		{"ecdsa key, rsa suites", ecKey, rsaOnly, "ssl_cipher allows no TLS 1.2 suite for an ECDSA certificate key (allowed: ECDHE-RSA-AES128-GCM-SHA256); add ECDHE-ECDSA suites"},
		{"ecdsa key, ecdsa suites", ecKey, ecdsaOnly, ""},
		{"ecdsa key, both", ecKey, both, ""},
		{"rsa key, ecdsa suites", rsaKey, ecdsaOnly, "for an RSA certificate key"},
		{"rsa key, rsa suites", rsaKey, rsaOnly, ""},
		{"rsa key, plain RSA key exchange", rsaKey, []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, ""},
		{"ed25519 key, rsa suites", edKey, rsaOnly, "for an Ed25519 certificate key"},
		{"ed25519 key, ecdsa suites", edKey, ecdsaOnly, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SuitesMatchKey(tt.suites, tt.key.Public())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("SuitesMatchKey = %v, want error containing %q", err, tt.wantErr)
			}
			herr := handshake12(t, selfSigned(t, tt.key), tt.suites)
			if (herr == nil) != (err == nil) {
				t.Errorf("SuitesMatchKey says %v but a real TLS 1.2 handshake says %v", err, herr)
			}
		})
	}
}

func TestSuitesMatchKeyEdges(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := SuitesMatchKey(nil, ecKey.Public()); err != nil {
		t.Errorf("nil suites (Go's defaults) must fit any key: %v", err)
	}
	if err := SuitesMatchKey([]uint16{tls.TLS_AES_128_GCM_SHA256}, ecKey.Public()); err != nil {
		t.Errorf("TLS 1.3 suites alone say nothing about TLS 1.2: %v", err)
	}
	if err := SuitesMatchKey(nil, "not a key"); err == nil || !strings.Contains(err.Error(), "unsupported certificate key type string") {
		t.Errorf("unknown key type: got %v", err)
	}
}
