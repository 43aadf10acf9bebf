package devpki

import (
	"context"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openssl runs the OpenSSL CLI with a deadline and returns its combined
// output. The test is skipped when the binary is missing.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skipf("openssl not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// TestOpenSSLVerify checks that OpenSSL, which MySQL uses, accepts the
// folder Init writes and sees the revocation Revoke makes.
func TestOpenSSLVerify(t *testing.T) {
	dir := t.TempDir()
	if err := Init(DirOptions{Dir: dir}, []string{"mysql-1", "mysql-2"}); err != nil {
		t.Fatal(err)
	}
	verify := func(member string) (string, error) {
		return openssl(t, "verify", "-crl_check", "-CAfile", filepath.Join(dir, CAFile),
			"-CRLfile", filepath.Join(dir, CRLFile), CertPath(dir, member))
	}
	for _, m := range []string{"mysql-1", "mysql-2"} {
		if out, err := verify(m); err != nil || !strings.Contains(out, ": OK") {
			t.Fatalf("openssl verify %s before revoke: %v\n%s", m, err, out)
		}
	}
	// The key matches the certificate for OpenSSL too.
	certMod, err := openssl(t, "x509", "-noout", "-pubkey", "-in", CertPath(dir, "mysql-1"))
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, certMod)
	}
	keyMod, err := openssl(t, "pkey", "-pubout", "-in", KeyPath(dir, "mysql-1"))
	if err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, keyMod)
	}
	if certMod != keyMod {
		t.Error("openssl sees different public keys in mysql-1.pem and mysql-1-key.pem")
	}

	if err := Revoke(DirOptions{Dir: dir}, "mysql-1"); err != nil {
		t.Fatal(err)
	}
	out, err := verify("mysql-1")
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify mysql-1 after revoke: err=%v, want certificate revoked\n%s", err, out)
	}
	if out, err := verify("mysql-2"); err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify mysql-2 after revoking mysql-1: %v\n%s", err, out)
	}
}

// TestOpenSSLChainAndCRLv1 checks an intermediate chain with CRLs of both
// CAs under -crl_check_all, and that OpenSSL reads the hand-built v1 CRL.
func TestOpenSSLChainAndCRLv1(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	rootCRL, err := p.root.CRL(nil, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	interCRLv1, err := p.inter.CRLv1([]*big.Int{p.interLeaf.Cert.SerialNumber}, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	interCRLv1Empty, err := p.inter.CRLv1(nil, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	caFile := write("ca.pem", p.inter.ChainPEM())
	leafFile := write("leaf.pem", p.interLeaf.CertPEM)
	v1File := write("inter-v1.pem", interCRLv1)

	out, err := openssl(t, "crl", "-noout", "-text", "-in", v1File)
	if err != nil || !strings.Contains(out, "Version 1 (0x0)") || strings.Contains(out, "CRL Number") {
		t.Errorf("openssl crl -text of v1 CRL: %v\n%s", err, out)
	}
	if out, err := openssl(t, "crl", "-noout", "-in", v1File, "-CAfile", caFile); err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl signature check of v1 CRL: %v\n%s", err, out)
	}

	crls := write("crls.pem", append(append([]byte{}, rootCRL...), interCRLv1Empty...))
	if out, err := openssl(t, "verify", "-crl_check_all", "-CAfile", caFile, "-CRLfile", crls, leafFile); err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify via intermediate with empty CRLs: %v\n%s", err, out)
	}
	crls = write("crls.pem", append(append([]byte{}, rootCRL...), interCRLv1...))
	if out, err := openssl(t, "verify", "-crl_check_all", "-CAfile", caFile, "-CRLfile", crls, leafFile); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify of leaf revoked by v1 CRL: err=%v, want certificate revoked\n%s", err, out)
	}
	// Without the root's CRL, CRL_CHECK_ALL cannot check the intermediate.
	interOnly := write("inter-only.pem", interCRLv1Empty)
	if out, err := openssl(t, "verify", "-crl_check_all", "-CAfile", caFile, "-CRLfile", interOnly, leafFile); err == nil || !strings.Contains(out, "unable to get certificate CRL") {
		t.Errorf("openssl verify without root CRL: err=%v, want unable to get certificate CRL\n%s", err, out)
	}
}
