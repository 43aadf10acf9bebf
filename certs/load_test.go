package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

func TestLoadErrorsNameOptionAndFile(t *testing.T) {
	p := newTestPKI(t)
	good := p.writeBasic(t)
	other, err := devpki.NewRootCA("someone else's root")
	if err != nil {
		t.Fatal(err)
	}
	otherLeaf, err := other.Issue(devpki.LeafTemplate{CommonName: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	// A CA with the root's name but another key: its CRL names a configured
	// issuer but its signature cannot verify.
	impostor, err := devpki.NewRootCA("groupwire test root")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.path("garbage.pem"), []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"))
	writeFile(t, p.path("other-key.pem"), otherLeaf.KeyPEM)
	writeFile(t, p.path("foreign.crl"), crl(t, other))
	writeFile(t, p.path("impostor.crl"), crl(t, impostor))
	writeFile(t, p.path("empty.pem"), nil)
	writeFile(t, p.path("notcrl.pem"), p.leaf.CertPEM)

	tests := []struct {
		name string
		src  func(Source) Source
		want []string
	}{
		{"missing ssl_ca", func(s Source) Source { s.CA = p.path("nope.pem"); return s },
			[]string{"load ssl_ca " + p.path("nope.pem"), "no such file"}},
		{"garbage ssl_cert", func(s Source) Source { s.Cert = p.path("garbage.pem"); return s },
			[]string{"load ssl_cert " + p.path("garbage.pem"), `truncated or malformed PEM block "-----BEGIN CERTIFICATE-----"`}},
		{"empty ssl_ca", func(s Source) Source { s.CA = p.path("empty.pem"); return s },
			[]string{"load ssl_ca " + p.path("empty.pem"), "no PEM CERTIFICATE block"}},
		{"key of another cert", func(s Source) Source { s.Key = p.path("other-key.pem"); return s },
			[]string{"load ssl_key " + p.path("other-key.pem") + ": private key does not match certificate " + p.path("cert.pem")}},
		{"cert without key", func(s Source) Source { s.Key = ""; return s },
			[]string{"load ssl_cert " + p.path("cert.pem"), "ssl_key is not set"}},
		{"key without cert", func(s Source) Source { s.Cert = ""; return s },
			[]string{"load ssl_key " + p.path("key.pem"), "ssl_cert is not set"}},
		{"CRL of an unconfigured CA", func(s Source) Source { s.CRL = p.path("foreign.crl"); return s },
			[]string{"load ssl_crl " + p.path("foreign.crl"), `CRL issuer "CN=someone else's root" is not a configured CA`}},
		{"CRL with a bad signature", func(s Source) Source { s.CRL = p.path("impostor.crl"); return s },
			[]string{"load ssl_crl " + p.path("impostor.crl"), "signature does not verify"}},
		{"ssl_crl without CRL blocks", func(s Source) Source { s.CRL = p.path("notcrl.pem"); return s },
			[]string{"load ssl_crl " + p.path("notcrl.pem"), `no PEM "X509 CRL" block`}},
		{"missing ssl_crlpath", func(s Source) Source { s.CRLPath = p.path("crl.d"); return s },
			[]string{"load ssl_crlpath " + p.path("crl.d")}},
		{"ssl_ca is a folder", func(s Source) Source { s.CA = p.dir; return s },
			[]string{"load ssl_ca " + p.dir, "not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := Load(tt.src(good))
			if err == nil {
				t.Fatalf("Load succeeded (%v), want an error", snap)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadKeyPairAndPools(t *testing.T) {
	p := newTestPKI(t)
	snap := mustLoad(t, p.writeBasic(t))
	if snap.Cert == nil || snap.Cert.Leaf == nil {
		t.Fatal("Cert or Cert.Leaf is nil")
	}
	if got := snap.Cert.Leaf.SerialNumber.Int64(); got != 0x1002 {
		t.Errorf("leaf serial = %#x, want 0x1002", got)
	}
	if len(snap.Cert.Certificate) != 2 {
		t.Errorf("chain has %d certificates, want leaf + intermediate", len(snap.Cert.Certificate))
	}
	if snap.CRLs != nil {
		t.Error("CRLs set without ssl_crl/ssl_crlpath")
	}
	// The intermediate must be in Intermediates, not Roots: then every chain
	// runs up to the self-signed root.
	chains, err := p.leaf.Cert.Verify(x509.VerifyOptions{Roots: snap.Roots, Intermediates: snap.Intermediates})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if len(c) != 3 {
			t.Errorf("chain of length %d, want leaf→intermediate→root", len(c))
		}
	}
	if _, err := p.leaf.Cert.Verify(x509.VerifyOptions{Roots: snap.Roots}); err == nil {
		t.Error("the intermediate was put among the roots")
	}
}

func TestLoadDigest(t *testing.T) {
	p := newTestPKI(t)
	src := p.writeBasic(t)
	a, b := mustLoad(t, src), mustLoad(t, src)
	if a.Digest != b.Digest {
		t.Error("same files, different digests")
	}
	writeFile(t, src.CA, append(p.inter.ChainPEM(), '\n'))
	if c := mustLoad(t, src); c.Digest == a.Digest {
		t.Error("digest unchanged after ssl_ca changed")
	}
}

func TestLoadEmptySource(t *testing.T) {
	snap := mustLoad(t, Source{})
	if snap.Cert != nil || snap.Roots != nil || snap.CRLs != nil {
		t.Errorf("empty source gave %+v", snap)
	}
}

// rehash makes OpenSSL hashed-name symlinks in dir, with openssl when
// installed, else by hand with made-up hashes (our loader never computes
// them, it only matches the names).
func rehash(t *testing.T, dir string, certs, crls []string) {
	t.Helper()
	if path, err := exec.LookPath("openssl"); err == nil {
		if out, err := exec.Command(path, "rehash", dir).CombinedOutput(); err != nil {
			t.Fatalf("openssl rehash %s: %v\n%s", dir, err, out)
		}
		return
	}
	for i, c := range certs {
		if err := os.Symlink(c, filepath.Join(dir, "0000000"+string(rune('a'+i))+".0")); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range crls {
		if err := os.Symlink(c, filepath.Join(dir, "0000000"+string(rune('a'+i))+".r0")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadHashedCAPathAndCRLPath(t *testing.T) {
	p := newTestPKI(t)
	capath, crlpath := p.path("ca.d"), p.path("crl.d")
	writeFile(t, filepath.Join(capath, "root.pem"), p.root.CertPEM)
	writeFile(t, filepath.Join(capath, "inter.crt"), p.inter.CertPEM)
	writeFile(t, filepath.Join(capath, "README"), []byte("not a certificate, and ignored"))
	writeFile(t, filepath.Join(crlpath, "root.crl"), crl(t, p.root))
	writeFile(t, filepath.Join(crlpath, "inter.pem"), crl(t, p.inter))
	rehash(t, capath, []string{"root.pem", "inter.crt"}, nil)
	rehash(t, crlpath, nil, []string{"root.crl", "inter.pem"})

	var hashed []string
	for _, d := range []string{capath, crlpath} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if hashedCertName.MatchString(e.Name()) || hashedCRLName.MatchString(e.Name()) {
				hashed = append(hashed, e.Name())
			}
		}
	}
	if len(hashed) != 4 {
		t.Fatalf("hashed names %v, want 2 certificates and 2 CRLs", hashed)
	}

	cas, err := loadCAs("", capath, newDigester())
	if err != nil {
		t.Fatal(err)
	}
	if len(cas) != 2 {
		t.Errorf("capath gave %d CA certificates, want 2 (symlinks deduplicated)", len(cas))
	}
	snap := mustLoad(t, Source{CAPath: capath, CRLPath: crlpath})
	if got := len(snap.CRLs.Info()); got != 2 {
		t.Errorf("crlpath gave %d CRLs, want 2 (symlinks deduplicated)", got)
	}
	if _, err := snap.VerifyPeer([]*x509.Certificate{p.leaf.Cert}, nil, time.Now()); err != nil {
		t.Errorf("leaf via capath/crlpath: %v", err)
	}
}

func TestLoadBoundsFileSize(t *testing.T) {
	big := filepath.Join(t.TempDir(), "huge.pem")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(Source{CA: big})
	if err == nil || !strings.Contains(err.Error(), "load ssl_ca "+big+": file is larger than 64 MiB") {
		t.Errorf("err = %v, want a size error naming %s", err, big)
	}
}

func TestParseCertsPEMSkipsOtherBlocks(t *testing.T) {
	p := newTestPKI(t)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42}}), p.root.CertPEM...)
	certs, err := ParseCertificatesPEM(data)
	if err != nil || len(certs) != 1 {
		t.Fatalf("got %d certificates, %v", len(certs), err)
	}
}
