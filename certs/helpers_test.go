package certs

import (
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

// testPKI is a root → intermediate → leaf hierarchy written to a temp dir.
type testPKI struct {
	dir   string
	root  *devpki.CA
	inter *devpki.CA
	leaf  *devpki.Leaf // CN=mysql-2, serial 0x1002, issued by inter
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	root, err := devpki.NewRootCA("groupwire test root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("groupwire test intermediate")
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), root: root, inter: inter}
	p.leaf = p.issue(t, devpki.LeafTemplate{CommonName: "mysql-2", Serial: big.NewInt(0x1002)})
	return p
}

func (p *testPKI) issue(t testing.TB, tmpl devpki.LeafTemplate) *devpki.Leaf {
	t.Helper()
	l, err := p.inter.Issue(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// path returns name inside the PKI's directory.
func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// writeKeyPair writes the leaf's chain and key as cert.pem and key.pem
// and the root and intermediate as ca.pem, returning the Source.
func (p *testPKI) writeBasic(t testing.TB) Source {
	t.Helper()
	writeFile(t, p.path("ca.pem"), p.inter.ChainPEM())
	writeFile(t, p.path("cert.pem"), p.leaf.ChainPEM)
	writeFile(t, p.path("key.pem"), p.leaf.KeyPEM)
	return Source{CA: p.path("ca.pem"), Cert: p.path("cert.pem"), Key: p.path("key.pem")}
}

// crl makes a current CRL of ca revoking serials.
func crl(t testing.TB, ca *devpki.CA, serials ...*big.Int) []byte {
	t.Helper()
	pem, err := ca.CRL(serials, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return pem
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustLoad(t testing.TB, src Source) *Snapshot {
	t.Helper()
	snap, err := Load(src)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}
