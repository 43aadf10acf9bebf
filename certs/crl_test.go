package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

// chainOf returns leaf→intermediate→root as x509.Verify would build it.
func (p *testPKI) chainOf(leaf *x509.Certificate) []*x509.Certificate {
	return []*x509.Certificate{leaf, p.inter.Cert, p.root.Cert}
}

// loadCRLSet loads ssl_ca = root+intermediate and the given CRL files
// (concatenated into one ssl_crl) and returns the CRL set.
func (p *testPKI) loadCRLSet(t *testing.T, crls ...[]byte) *CRLSet {
	t.Helper()
	var all []byte
	for _, c := range crls {
		all = append(all, c...)
	}
	writeFile(t, p.path("ca.pem"), p.inter.ChainPEM())
	writeFile(t, p.path("crl.pem"), all)
	return mustLoad(t, Source{CA: p.path("ca.pem"), CRL: p.path("crl.pem")}).CRLs
}

func TestCRLCheckAll(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	chain := p.chainOf(p.leaf.Cert)

	t.Run("both CRLs", func(t *testing.T) {
		set := p.loadCRLSet(t, crl(t, p.root), crl(t, p.inter))
		if err := set.Check(chain, now); err != nil {
			t.Fatal(err)
		}
		if got := len(set.Info()); got != 2 {
			t.Errorf("Info lists %d CRLs from one two-CRL PEM file, want 2", got)
		}
	})
	t.Run("only the intermediate's CRL fails at depth 1", func(t *testing.T) {
		err := p.loadCRLSet(t, crl(t, p.inter)).Check(chain, now)
		if !errors.Is(err, ErrCRLMissing) {
			t.Fatalf("err = %v, want ErrCRLMissing", err)
		}
		want := `unable to get certificate CRL for "CN=groupwire test intermediate": no CRL of its issuer "CN=groupwire test root" is loaded`
		if err.Error() != want {
			t.Errorf("err = %q\nwant  %q", err, want)
		}
	})
	t.Run("only the root's CRL fails at the leaf", func(t *testing.T) {
		err := p.loadCRLSet(t, crl(t, p.root)).Check(chain, now)
		if !errors.Is(err, ErrCRLMissing) || !strings.Contains(err.Error(), `"CN=mysql-2"`) {
			t.Fatalf("err = %v, want ErrCRLMissing for CN=mysql-2", err)
		}
	})
	t.Run("nil set checks nothing", func(t *testing.T) {
		var set *CRLSet
		if err := set.Check(chain, now); err != nil {
			t.Fatal(err)
		}
		if set.Info() != nil {
			t.Error("nil set has Info")
		}
	})
}

func TestCRLRevoked(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()

	t.Run("leaf", func(t *testing.T) {
		set := p.loadCRLSet(t, crl(t, p.root), crl(t, p.inter, big.NewInt(7), big.NewInt(0x1002)))
		err := set.Check(p.chainOf(p.leaf.Cert), now)
		var rev *RevokedError
		if !errors.As(err, &rev) {
			t.Fatalf("err = %v, want *RevokedError", err)
		}
		want := `certificate "CN=mysql-2" serial 0x1002 is revoked (CRL ` + p.path("crl.pem") + `)`
		if err.Error() != want {
			t.Errorf("err = %q\nwant  %q", err, want)
		}
		if rev.Issuer != "CN=groupwire test intermediate" || rev.Serial.Int64() != 0x1002 {
			t.Errorf("RevokedError = %+v", rev)
		}
		other := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-3", Serial: big.NewInt(0x1003)})
		if err := set.Check(p.chainOf(other.Cert), now); err != nil {
			t.Errorf("unrevoked sibling: %v", err)
		}
	})
	t.Run("intermediate", func(t *testing.T) {
		set := p.loadCRLSet(t, crl(t, p.root, p.inter.Cert.SerialNumber), crl(t, p.inter))
		var rev *RevokedError
		if err := set.Check(p.chainOf(p.leaf.Cert), now); !errors.As(err, &rev) || rev.Subject != "CN=groupwire test intermediate" {
			t.Fatalf("err = %v, want the intermediate revoked", err)
		}
	})
}

func TestCRLValidityWindow(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	chain := p.chainOf(p.leaf.Cert)
	next := now.Add(-time.Hour).UTC().Truncate(time.Second)
	expired, err := p.inter.CRL(nil, now.Add(-48*time.Hour), next)
	if err != nil {
		t.Fatal(err)
	}
	future, err := p.inter.CRL(nil, now.Add(time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("expired CRL loads but fails Check", func(t *testing.T) {
		err := p.loadCRLSet(t, crl(t, p.root), expired).Check(chain, now)
		if !errors.Is(err, ErrCRLExpired) {
			t.Fatalf("err = %v, want ErrCRLExpired", err)
		}
		for _, w := range []string{p.path("crl.pem"), next.Format(time.RFC3339)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("err %q does not name %q", err, w)
			}
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		err := p.loadCRLSet(t, crl(t, p.root), future).Check(chain, now)
		if err == nil || !strings.Contains(err.Error(), "CRL is not yet valid") {
			t.Fatalf("err = %v, want not yet valid", err)
		}
	})
	t.Run("a current CRL beside an expired one wins", func(t *testing.T) {
		set := p.loadCRLSet(t, crl(t, p.root), expired, crl(t, p.inter))
		if err := set.Check(chain, now); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCRLUnhandledCriticalExtension(t *testing.T) {
	p := newTestPKI(t)
	idp, err := p.inter.CRLFrom(&x509.RevocationList{
		ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{
			Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: []byte{0x30, 0x00},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.loadCRLSet(t, crl(t, p.root), idp).Check(p.chainOf(p.leaf.Cert), time.Now())
	if err == nil || !strings.Contains(err.Error(), "unhandled critical extension 2.5.29.28") {
		t.Fatalf("err = %v, want the critical IDP refused", err)
	}
}

func TestCRLv1Fallback(t *testing.T) {
	p := newTestPKI(t)
	v1, err := p.inter.CRLv1([]*big.Int{big.NewInt(0x1002)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(v1)
	if _, err := x509.ParseRevocationList(block.Bytes); err == nil {
		t.Fatal("test premise: ParseRevocationList accepts v1 CRLs now")
	}
	set := p.loadCRLSet(t, crl(t, p.root), v1)
	var rev *RevokedError
	if err := set.Check(p.chainOf(p.leaf.Cert), time.Now()); !errors.As(err, &rev) {
		t.Fatalf("err = %v, want revoked through the v1 CRL", err)
	}

	foreign, err := devpki.NewRootCA("groupwire test intermediate") // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	bad, err := foreign.CRLv1(nil, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.path("bad-v1.crl"), bad)
	_, err = Load(Source{CA: p.path("ca.pem"), CRL: p.path("bad-v1.crl")})
	if err == nil || !strings.Contains(err.Error(), "load ssl_crl "+p.path("bad-v1.crl")+": CRL signature does not verify") {
		t.Fatalf("err = %v, want a signature error naming the file", err)
	}
}

func TestCRLDER(t *testing.T) {
	p := newTestPKI(t)
	block, _ := pem.Decode(crl(t, p.inter, big.NewInt(0x1002)))
	writeFile(t, p.path("ca.pem"), p.inter.ChainPEM())
	writeFile(t, p.path("inter.der"), block.Bytes)
	writeFile(t, p.path("crl.d/root.crl"), crl(t, p.root))
	snap := mustLoad(t, Source{CA: p.path("ca.pem"), CRL: p.path("inter.der"), CRLPath: p.path("crl.d")})
	var rev *RevokedError
	if err := snap.CRLs.Check(p.chainOf(p.leaf.Cert), time.Now()); !errors.As(err, &rev) || rev.CRL != p.path("inter.der") {
		t.Fatalf("err = %v, want revoked by %s", err, p.path("inter.der"))
	}
	info := snap.CRLs.Info()
	if len(info) != 2 || info[0].File != p.path("inter.der") || info[0].Revoked != 1 ||
		info[0].Issuer != "CN=groupwire test intermediate" || info[0].NextUpdate.IsZero() {
		t.Errorf("Info = %+v", info)
	}
}

func TestSerialKeyMatchesBytes(t *testing.T) {
	// The want column is written out by hand, not computed with big.Int, so
	// that a wrong serialKey cannot agree with itself. 2^300 needs 38 bytes,
	// more than the 32-byte buffer: serialKey must then allocate its own.
	big300 := new(big.Int).Lsh(big.NewInt(1), 300)
	for _, tc := range []struct {
		n    *big.Int
		want string
	}{
		{big.NewInt(0), ""},
		{big.NewInt(1), "01"},
		{big.NewInt(0x1002), "1002"},
		{big.NewInt(0xff00ff), "ff00ff"},
		{big300, "10" + strings.Repeat("00", 37)}, // 2^300 = 0x10 followed by 37 zero bytes
	} {
		var buf [32]byte
		if got := hex.EncodeToString(serialKey(tc.n, buf[:0])); got != tc.want {
			t.Errorf("serialKey(%v) = %s, want %s", tc.n, got, tc.want)
		}
	}
	neg := big.NewInt(-5)
	if string(serialKey(neg, nil)) == string(serialKey(big.NewInt(5), nil)) {
		t.Error("negative and positive serials collide")
	}
}
