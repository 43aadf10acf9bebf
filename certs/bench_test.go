package certs

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

// largeCRLEntries is the size of the CRL the benchmarks load: NOTES.md
// measured 100,000 entries (4.9 MB DER) as a realistic large CA.
const largeCRLEntries = 100_000

// largeCRLFixture is a root CA, ssl_ca and a 100,000-entry ssl_crl on
// disk, built once per test binary (signing it takes a while) in a temp
// folder that TestMain removes.
type largeCRLFixture struct {
	root    *devpki.CA
	leaf    *devpki.Leaf
	caFile  string
	crlFile string
}

var (
	largeOnce sync.Once
	largeFix  *largeCRLFixture
	largeErr  error
	largeDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if largeDir != "" {
		os.RemoveAll(largeDir)
	}
	os.Exit(code)
}

func largeCRL(tb testing.TB) *largeCRLFixture {
	tb.Helper()
	largeOnce.Do(func() { largeFix, largeErr = makeLargeCRL() })
	if largeErr != nil {
		tb.Fatal(largeErr)
	}
	return largeFix
}

func makeLargeCRL() (*largeCRLFixture, error) {
	dir, err := os.MkdirTemp("", "certs-large-crl-")
	if err != nil {
		return nil, err
	}
	largeDir = dir
	root, err := devpki.NewRootCA("large CRL root")
	if err != nil {
		return nil, err
	}
	leaf, err := root.Issue(devpki.LeafTemplate{CommonName: "mysql-1"})
	if err != nil {
		return nil, err
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour)}
	tmpl.RevokedCertificateEntries = make([]x509.RevocationListEntry, largeCRLEntries)
	for i := range tmpl.RevokedCertificateEntries {
		serial := new(big.Int).SetUint64(rng.Uint64())
		serial.Lsh(serial, 63).Or(serial, new(big.Int).SetUint64(rng.Uint64()>>1))
		tmpl.RevokedCertificateEntries[i] = x509.RevocationListEntry{SerialNumber: serial, RevocationTime: now.Add(-time.Hour)}
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, root.Cert, root.Key)
	if err != nil {
		return nil, err
	}
	f := &largeCRLFixture{root: root, leaf: leaf, caFile: filepath.Join(dir, "ca.pem"), crlFile: filepath.Join(dir, "crl.pem")}
	if err := os.WriteFile(f.caFile, root.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return f, nil
}

func TestLargeCRLLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-entry CRL")
	}
	f := largeCRL(t)
	// How fast it loads is BenchmarkCRLLoad's to say; this test checks
	// that it loads whole and that a lookup allocates nothing.
	snap := mustLoad(t, Source{CA: f.caFile, CRL: f.crlFile})
	if info := snap.CRLs.Info(); len(info) != 1 || info[0].Revoked != largeCRLEntries {
		t.Fatalf("Info = %+v", info)
	}
	chain := []*x509.Certificate{f.leaf.Cert, f.root.Cert}
	now := time.Now()
	if err := snap.CRLs.Check(chain, now); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = snap.CRLs.Check(chain, now) }); allocs != 0 {
		t.Errorf("a CRL lookup in a %d-entry CRL allocates %.1f times, want 0", largeCRLEntries, allocs)
	}
}

func BenchmarkCRLLoad(b *testing.B) {
	f := largeCRL(b)
	src := Source{CA: f.caFile, CRL: f.crlFile}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCRLCheck(b *testing.B) {
	f := largeCRL(b)
	snap, err := Load(Source{CA: f.caFile, CRL: f.crlFile})
	if err != nil {
		b.Fatal(err)
	}
	chain := []*x509.Certificate{f.leaf.Cert, f.root.Cert}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := snap.CRLs.Check(chain, now); err != nil {
			b.Fatal(err)
		}
	}
}
