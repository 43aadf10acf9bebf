package certs

import (
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

func TestStoreReloadKeepsOldOnBadFiles(t *testing.T) {
	p := newTestPKI(t)
	writeFile(t, p.path("crl.pem"), append(crl(t, p.root), crl(t, p.inter)...))
	src := p.writeBasic(t)
	src.CRL = p.path("crl.pem")
	st, err := NewStore("channel group", src)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name() != "channel group" || st.Source() != src {
		t.Errorf("Name/Source = %q/%+v", st.Name(), st.Source())
	}
	first := st.Current()

	changed, err := st.Reload()
	if err != nil || changed {
		t.Fatalf("no-op reload: changed=%v err=%v", changed, err)
	}
	if st.Current() != first {
		t.Error("no-op reload swapped the snapshot")
	}

	other, err := devpki.NewRootCA("foreign root")
	if err != nil {
		t.Fatal(err)
	}
	otherLeaf, err := other.Issue(devpki.LeafTemplate{CommonName: "foreign"})
	if err != nil {
		t.Fatal(err)
	}
	goodCert := p.leaf.ChainPEM
	goodCRL := append(crl(t, p.root), crl(t, p.inter)...)
	bad := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"garbage", src.Cert, []byte("garbage"), "load ssl_cert " + src.Cert},
		{"half-written", src.Cert, goodCert[:len(goodCert)*3/4], "load ssl_cert " + src.Cert + ": truncated or malformed PEM block"},
		{"wrong key", src.Key, otherLeaf.KeyPEM, "load ssl_key " + src.Key + ": private key does not match"},
		{"foreign CRL", src.CRL, crl(t, other), "load ssl_crl " + src.CRL + `: CRL issuer "CN=foreign root" is not a configured CA`},
		{"empty CRL file", src.CRL, nil, "load ssl_crl " + src.CRL + ": file is empty"},
	}
	restore := map[string][]byte{src.Cert: goodCert, src.Key: p.leaf.KeyPEM, src.CRL: goodCRL}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			writeFile(t, b.file, b.data)
			defer writeFile(t, b.file, restore[b.file])
			changed, err := st.Reload()
			if err == nil || changed {
				t.Fatalf("changed=%v err=%v, want an error", changed, err)
			}
			if !strings.HasPrefix(err.Error(), "reload channel group: ") || !strings.Contains(err.Error(), b.want) {
				t.Errorf("err = %q, want it to name the store and contain %q", err, b.want)
			}
			if st.Current() != first {
				t.Error("a failed reload replaced the snapshot")
			}
			if st.LastError() == nil || st.LastError().Error() != err.Error() {
				t.Errorf("LastError = %v", st.LastError())
			}
		})
	}

	next := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-2", Serial: big.NewInt(0x2002)})
	writeFile(t, src.Cert, next.ChainPEM)
	writeFile(t, src.Key, next.KeyPEM)
	changed, err = st.Reload()
	if err != nil || !changed {
		t.Fatalf("good write: changed=%v err=%v", changed, err)
	}
	if got := st.Current().Cert.Leaf.SerialNumber.Int64(); got != 0x2002 {
		t.Errorf("serial after reload = %#x, want 0x2002", got)
	}
	if st.LastError() != nil {
		t.Errorf("LastError after a good reload = %v", st.LastError())
	}
}

func TestNewStoreFailsOnBadFiles(t *testing.T) {
	_, err := NewStore("channel recovery", Source{CA: "/nonexistent/ca.pem"})
	if err == nil || !strings.HasPrefix(err.Error(), "channel recovery: load ssl_ca /nonexistent/ca.pem: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestStorePaths(t *testing.T) {
	st := &Store{src: Source{CA: "a", CAPath: "b", Cert: "c", Key: "d", CRLPath: "f"}}
	files, dirs := st.Paths()
	if strings.Join(files, ",") != "a,c,d" || strings.Join(dirs, ",") != "b,f" {
		t.Errorf("Paths = %v, %v", files, dirs)
	}
}

func TestReloadAll(t *testing.T) {
	p := newTestPKI(t)
	good, err := NewStore("good", p.writeBasic(t))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.path("other-ca.pem"), p.root.CertPEM)
	broken, err := NewStore("broken", Source{CA: p.path("other-ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.path("other-ca.pem"), []byte("oops"))
	var seen []string
	err = ReloadAll([]*Store{good, broken}, func(s *Store, changed bool, err error) {
		seen = append(seen, s.Name())
	})
	if err == nil || !strings.Contains(err.Error(), "reload broken: load ssl_ca") || strings.Contains(err.Error(), "reload good") {
		t.Errorf("err = %v", err)
	}
	if strings.Join(seen, ",") != "good,broken" {
		t.Errorf("onReload saw %v", seen)
	}
}

// TestSetSuppliedReportsTrustChanges: supplied material (an SVID and its
// bundle) swaps certificate and trust at once; only a different set of
// trust anchors is reported as a trust change, which is what re-checks
// live links; a store with file keys refuses supplied material.
func TestSetSuppliedReportsTrustChanges(t *testing.T) {
	p := newTestPKI(t)
	st, err := NewStore("channel group", Source{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := p.leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		trust []*x509.Certificate
		want  bool
	}{
		{[]*x509.Certificate{p.root.Cert}, true}, // the first trust anchors
		{[]*x509.Certificate{p.root.Cert}, false},
		{[]*x509.Certificate{p.root.Cert, p.inter.Cert}, true},
		{[]*x509.Certificate{p.inter.Cert}, true},
	}
	for i, s := range steps {
		changed, err := st.SetSupplied(&cert, s.trust)
		if err != nil || changed != s.want {
			t.Fatalf("step %d: changed %v, %v; want %v", i, changed, err, s.want)
		}
	}
	if _, err := st.Current().VerifyPeer([]*x509.Certificate{p.leaf.Cert}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Now()); err != nil {
		t.Fatalf("a peer under the supplied anchor: %v", err)
	}
	if _, err := st.SetSupplied(&cert, nil); err == nil {
		t.Error("no trust anchor was accepted")
	}
	files, err := NewStore("channel files", p.writeBasic(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := files.SetSupplied(&cert, []*x509.Certificate{p.root.Cert}); err == nil || !strings.Contains(err.Error(), "ssl_ca or ssl_capath is configured") {
		t.Errorf("supplied material over files: %v", err)
	}
}
