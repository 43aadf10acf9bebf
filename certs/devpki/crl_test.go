package devpki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// crlDER decodes the single X509 CRL block of data.
func crlDER(t testing.TB, data []byte) []byte {
	t.Helper()
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "X509 CRL" {
		t.Fatalf("not a PEM X509 CRL: %q", data)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("trailing data after CRL: %q", rest)
	}
	return b.Bytes
}

func serials(entries []x509.RevocationListEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.SerialNumber.String())
	}
	return out
}

func TestCRLv2(t *testing.T) {
	p := newPKI(t)
	for _, ca := range []*CA{p.root, p.inter} {
		t.Run(ca.Cert.Subject.CommonName, func(t *testing.T) {
			this := time.Now().Add(-time.Minute).Truncate(time.Second)
			next := this.Add(48 * time.Hour)
			revoked := []*big.Int{big.NewInt(7), p.interLeaf.Cert.SerialNumber}
			var last *big.Int
			for i := 0; i < 3; i++ {
				data, err := ca.CRL(revoked, this, next)
				if err != nil {
					t.Fatal(err)
				}
				rl, err := x509.ParseRevocationList(crlDER(t, data))
				if err != nil {
					t.Fatal(err)
				}
				if err := rl.CheckSignatureFrom(ca.Cert); err != nil {
					t.Errorf("CheckSignatureFrom issuer: %v", err)
				}
				if !rl.ThisUpdate.Equal(this) || !rl.NextUpdate.Equal(next) {
					t.Errorf("updates %v/%v, want %v/%v", rl.ThisUpdate, rl.NextUpdate, this, next)
				}
				if got, want := strings.Join(serials(rl.RevokedCertificateEntries), ","), "7,"+p.interLeaf.Cert.SerialNumber.String(); got != want {
					t.Errorf("revoked %s, want %s", got, want)
				}
				if rl.Number == nil || (last != nil && rl.Number.Cmp(last) <= 0) {
					t.Errorf("CRL number %v after %v, want increasing", rl.Number, last)
				}
				last = rl.Number
				if string(rl.RawIssuer) != string(ca.Cert.RawSubject) {
					t.Error("CRL issuer is not the CA subject")
				}
			}
			if last.Int64() != 3 {
				t.Errorf("third CRL number %v, want 3", last)
			}
		})
	}
	// Numbers are per CA: the intermediate's first CRL is 1 whatever the root did.
	other, err := p.root.NewIntermediate("fresh")
	if err != nil {
		t.Fatal(err)
	}
	data, err := other.CRL(nil, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(crlDER(t, data))
	if err != nil {
		t.Fatal(err)
	}
	if rl.Number.Int64() != 1 || len(rl.RevokedCertificateEntries) != 0 {
		t.Errorf("fresh CA's empty CRL: number %v, %d entries; want 1, 0", rl.Number, len(rl.RevokedCertificateEntries))
	}
	if d := rl.NextUpdate.Sub(rl.ThisUpdate); d != 30*24*time.Hour {
		t.Errorf("default nextUpdate span %v, want 30 days", d)
	}
	if err := rl.CheckSignatureFrom(p.root.Cert); err == nil {
		t.Error("CRL signature verified against the wrong CA")
	}
	if _, err := p.root.CRL(nil, time.Now(), time.Now().Add(-time.Hour)); err == nil {
		t.Error("CRL with nextUpdate before thisUpdate was made")
	}
}

func TestCRLFromCriticalExtension(t *testing.T) {
	root, err := NewRootCA("ext root")
	if err != nil {
		t.Fatal(err)
	}
	idp := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: []byte{0x30, 0x00}}
	when := time.Now().Add(-time.Hour).Truncate(time.Second)
	data, err := root.CRLFrom(&x509.RevocationList{
		ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), Number: big.NewInt(99),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(5), RevocationTime: when, ReasonCode: 1}},
		ExtraExtensions:           []pkix.Extension{idp},
	})
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(crlDER(t, data))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range rl.Extensions {
		found = found || (e.Id.Equal(idp.Id) && e.Critical)
	}
	if !found {
		t.Error("critical IDP extension missing from parsed CRL")
	}
	if rl.Number.Int64() != 99 {
		t.Errorf("number %v, want 99", rl.Number)
	}
	e := rl.RevokedCertificateEntries[0]
	if !e.RevocationTime.Equal(when) || e.ReasonCode != 1 {
		t.Errorf("entry time %v reason %d, want %v reason 1", e.RevocationTime, e.ReasonCode, when)
	}
}

func TestCRLv1(t *testing.T) {
	p := newPKI(t)
	this := time.Now().Add(-time.Minute)
	next := this.Add(24 * time.Hour)
	revoked := []*big.Int{big.NewInt(1), p.interLeaf.Cert.SerialNumber}
	for _, ca := range []*CA{p.root, p.inter} {
		t.Run(ca.Cert.Subject.CommonName, func(t *testing.T) {
			data, err := ca.CRLv1(revoked, this, next)
			if err != nil {
				t.Fatal(err)
			}
			der := crlDER(t, data)
			if _, err := x509.ParseRevocationList(der); err == nil || !strings.Contains(err.Error(), "unsupported crl version") {
				t.Fatalf("ParseRevocationList of v1 CRL: err=%v, want unsupported crl version", err)
			}
			//lint:ignore SA1019 the deprecated parser is the v1 fallback under test
			crl, err := x509.ParseDERCRL(der) //nolint:staticcheck
			if err != nil {
				t.Fatalf("ParseDERCRL: %v", err)
			}
			if v := crl.TBSCertList.Version; v != 0 {
				t.Errorf("version field %d, want absent (0)", v)
			}
			if len(crl.TBSCertList.Extensions) != 0 {
				t.Errorf("v1 CRL has %d extensions", len(crl.TBSCertList.Extensions))
			}
			if err := ca.Cert.CheckCRLSignature(crl); err != nil {
				t.Errorf("CheckCRLSignature by issuer: %v", err)
			}
			wrong := p.root
			if ca == p.root {
				wrong = p.inter
			}
			if err := wrong.Cert.CheckCRLSignature(crl); err == nil {
				t.Error("CheckCRLSignature by the wrong CA succeeded")
			}
			var got []string
			for _, r := range crl.TBSCertList.RevokedCertificates {
				got = append(got, r.SerialNumber.String())
			}
			if want := "1," + p.interLeaf.Cert.SerialNumber.String(); strings.Join(got, ",") != want {
				t.Errorf("revoked %v, want %s", got, want)
			}
			if !crl.TBSCertList.ThisUpdate.Equal(this.Truncate(time.Second)) || !crl.TBSCertList.NextUpdate.Equal(next.Truncate(time.Second)) {
				t.Errorf("updates %v/%v, want %v/%v", crl.TBSCertList.ThisUpdate, crl.TBSCertList.NextUpdate, this, next)
			}
			var issuer pkix.RDNSequence
			if _, err := asn1.Unmarshal(ca.Cert.RawSubject, &issuer); err != nil {
				t.Fatal(err)
			}
			if crl.TBSCertList.Issuer.String() != issuer.String() {
				t.Errorf("issuer %s, want %s", crl.TBSCertList.Issuer, issuer)
			}
		})
	}

	// Empty list, no nextUpdate, and a date past 2049 (GeneralizedTime).
	far := time.Date(2051, 3, 4, 5, 6, 7, 0, time.UTC)
	data, err := p.root.CRLv1(nil, far, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseDERCRL(crlDER(t, data)) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	if err := p.root.Cert.CheckCRLSignature(crl); err != nil {
		t.Error(err)
	}
	if !crl.TBSCertList.NextUpdate.IsZero() || len(crl.TBSCertList.RevokedCertificates) != 0 || !crl.TBSCertList.ThisUpdate.Equal(far) {
		t.Errorf("empty v1 CRL: thisUpdate %v nextUpdate %v, %d entries", crl.TBSCertList.ThisUpdate, crl.TBSCertList.NextUpdate, len(crl.TBSCertList.RevokedCertificates))
	}
	if _, err := p.root.CRLv1(nil, this, this.Add(-time.Hour)); err == nil {
		t.Error("v1 CRL with nextUpdate before thisUpdate was made")
	}
}
