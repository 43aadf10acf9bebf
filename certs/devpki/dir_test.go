package devpki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readCRL parses dir/crl.pem and checks its signature against ca.
func readCRL(t testing.TB, dir string, ca *x509.Certificate) *x509.RevocationList {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(crlDER(t, data))
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("crl.pem signature: %v", err)
	}
	return rl
}

func readState(t testing.TB, dir string) *dirState {
	t.Helper()
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readLeaf(t testing.TB, dir, member string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(CertPath(dir, member))
	if err != nil {
		t.Fatal(err)
	}
	certs := parsePEMCerts(t, data)
	if len(certs) != 1 {
		t.Fatalf("%s.pem holds %d certificates, want the leaf only", member, len(certs))
	}
	return certs[0]
}

func checkMode(t testing.TB, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), want)
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ips := map[string][]net.IP{"mysql-1": {net.ParseIP("10.0.0.1"), net.ParseIP("::1")}}
	if err := Init(DirOptions{Dir: dir, IPs: ips, Validity: 48 * time.Hour}, []string{"mysql-1", "mysql-2"}); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{
		CAFile: 0o644, CAKeyFile: 0o600, CRLFile: 0o644, StateFile: 0o644,
		"mysql-1.pem": 0o644, "mysql-1-key.pem": 0o600, "mysql-2.pem": 0o644, "mysql-2-key.pem": 0o600,
	} {
		checkMode(t, filepath.Join(dir, name), mode)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 8 {
		t.Errorf("folder holds %d entries, want 8", len(entries))
	}

	ca, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert.Subject.CommonName != DefaultCAName || ca.Parent != nil {
		t.Errorf("CA %q parent %v", ca.Cert.Subject.CommonName, ca.Parent)
	}
	st := readState(t, dir)
	for _, m := range []string{"mysql-1", "mysql-2"} {
		leaf := readLeaf(t, dir, m)
		if leaf.Subject.CommonName != m || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != m {
			t.Errorf("%s: CN %q DNS %v", m, leaf.Subject.CommonName, leaf.DNSNames)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.CertPool(), DNSName: m, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: verify as client: %v", m, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.CertPool(), DNSName: m}); err != nil {
			t.Errorf("%s: verify as server: %v", m, err)
		}
		if life := leaf.NotAfter.Sub(time.Now()); life < 47*time.Hour || life > 48*time.Hour {
			t.Errorf("%s: lifetime %v, want 48h", m, life)
		}
		if _, err := tls.LoadX509KeyPair(CertPath(dir, m), KeyPath(dir, m)); err != nil {
			t.Errorf("%s: key pair: %v", m, err)
		}
		ms := st.Members[m]
		if ms == nil || ms.Current != serialHex(leaf.SerialNumber) || len(ms.Issued) != 1 {
			t.Errorf("%s: state %+v, want current serial %s", m, ms, serialHex(leaf.SerialNumber))
		}
	}
	leaf1 := readLeaf(t, dir, "mysql-1")
	if len(leaf1.IPAddresses) != 2 || !leaf1.IPAddresses[0].Equal(ips["mysql-1"][0]) || !leaf1.IPAddresses[1].Equal(ips["mysql-1"][1]) {
		t.Errorf("mysql-1 IPs %v, want %v", leaf1.IPAddresses, ips["mysql-1"])
	}
	if n := len(readLeaf(t, dir, "mysql-2").IPAddresses); n != 0 {
		t.Errorf("mysql-2 has %d IPs, want none", n)
	}

	rl := readCRL(t, dir, ca.Cert)
	if rl.Number.Int64() != 1 || len(rl.RevokedCertificateEntries) != 0 {
		t.Errorf("initial CRL number %v with %d entries, want 1 and empty", rl.Number, len(rl.RevokedCertificateEntries))
	}
	if d := time.Until(rl.NextUpdate); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Errorf("CRL nextUpdate in %v, want 30 days", d)
	}
	if st.NextCRLNumber != 2 || len(st.Revoked) != 0 {
		t.Errorf("state next CRL %d, %d revoked; want 2, 0", st.NextCRLNumber, len(st.Revoked))
	}

	// state.json is plain JSON with hex serials.
	raw, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("state.json: %v", err)
	}
	for _, k := range []string{"version", "next_crl_number", "members", "revoked"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("state.json lacks %q", k)
		}
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := Init(DirOptions{Dir: dir}, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	err = Init(DirOptions{Dir: dir}, []string{"a"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CAFile)) {
		t.Fatalf("second Init: err=%v, want an error naming %s", err, CAFile)
	}

	// Only a member file in the way: the error names it and nothing is written.
	dir2 := t.TempDir()
	blocker := filepath.Join(dir2, "b-key.pem")
	if err := os.WriteFile(blocker, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Init(DirOptions{Dir: dir2}, []string{"a", "b"})
	if err == nil || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("Init over %s: err=%v, want an error naming it", blocker, err)
	}
	if entries, _ := os.ReadDir(dir2); len(entries) != 1 {
		t.Errorf("refused Init wrote %d files", len(entries)-1)
	}

	if err := Init(DirOptions{Dir: dir, Force: true}, []string{"a"}); err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(before) == string(after) {
		t.Error("Init with Force kept the old CA")
	}
}

func TestInitBadInput(t *testing.T) {
	tests := []struct {
		name    string
		opts    DirOptions
		members []string
		want    string
	}{
		{"underscore", DirOptions{}, []string{"ok", "my_sql"}, `"my_sql"`},
		{"leading hyphen", DirOptions{}, []string{"-a"}, `"-a"`},
		{"trailing hyphen", DirOptions{}, []string{"a-"}, `"a-"`},
		{"empty", DirOptions{}, []string{""}, `""`},
		{"too long", DirOptions{}, []string{strings.Repeat("a", 64)}, "63"},
		{"dot", DirOptions{}, []string{"a.b"}, `"a.b"`},
		{"slash", DirOptions{}, []string{"../x"}, `"../x"`},
		{"reserved ca", DirOptions{}, []string{"CA"}, `"CA"`},
		{"reserved crl", DirOptions{}, []string{"crl"}, `"crl"`},
		{"key suffix", DirOptions{}, []string{"a", "a-key"}, `"a-key"`},
		{"duplicate", DirOptions{}, []string{"a", "a"}, "twice"},
		{"ips of stranger", DirOptions{IPs: map[string][]net.IP{"b": {net.IPv4(1, 2, 3, 4)}}}, []string{"a"}, `"b"`},
		{"negative validity", DirOptions{Validity: -time.Hour}, []string{"a"}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.opts.Dir = dir
			err := Init(tc.opts, tc.members)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want it to contain %s", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("failed Init wrote %d files", len(entries))
			}
		})
	}
	if err := Init(DirOptions{}, nil); err == nil {
		t.Error("Init with no folder succeeded")
	}
}

func TestIssueAndRenew(t *testing.T) {
	dir := t.TempDir()
	if err := Init(DirOptions{Dir: dir}, []string{"mysql-1"}); err != nil {
		t.Fatal(err)
	}
	ca, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	// A new member.
	opts := DirOptions{Dir: dir, IPs: map[string][]net.IP{"mysql-3": {net.IPv4(192, 0, 2, 3)}}}
	if err := Issue(opts, "mysql-3"); err != nil {
		t.Fatal(err)
	}
	leaf := readLeaf(t, dir, "mysql-3")
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.CertPool(), DNSName: "192.0.2.3"}); err != nil {
		t.Errorf("new member verify by IP: %v", err)
	}
	checkMode(t, KeyPath(dir, "mysql-3"), 0o600)
	checkMode(t, CertPath(dir, "mysql-3"), 0o644)

	// Renewal needs Force; the error names the file and nothing changes.
	old := readLeaf(t, dir, "mysql-1")
	err = Issue(DirOptions{Dir: dir}, "mysql-1")
	if want := CertPath(dir, "mysql-1"); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("renew without Force: err=%v, want an error naming %s", err, want)
	}
	if !readLeaf(t, dir, "mysql-1").Equal(old) {
		t.Error("refused renewal changed mysql-1.pem")
	}
	if err := Issue(DirOptions{Dir: dir, Force: true}, "mysql-1"); err != nil {
		t.Fatal(err)
	}
	renewed := readLeaf(t, dir, "mysql-1")
	if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Error("renewal kept the serial")
	}
	if _, err := tls.LoadX509KeyPair(CertPath(dir, "mysql-1"), KeyPath(dir, "mysql-1")); err != nil {
		t.Errorf("renewed key pair: %v", err)
	}
	st := readState(t, dir)
	m := st.Members["mysql-1"]
	if m.Current != serialHex(renewed.SerialNumber) || len(m.Issued) != 2 || m.Issued[0].Serial != serialHex(old.SerialNumber) {
		t.Errorf("state after renewal %+v", m)
	}
	if len(st.Revoked) != 0 {
		t.Errorf("renewal revoked %v", st.Revoked)
	}
	if rl := readCRL(t, dir, ca.Cert); len(rl.RevokedCertificateEntries) != 0 {
		t.Error("renewal put the old serial on the CRL")
	}
	// The old certificate still verifies: renewal does not revoke.
	if _, err := old.Verify(x509.VerifyOptions{Roots: ca.CertPool()}); err != nil {
		t.Errorf("old certificate after renewal: %v", err)
	}

	if err := Issue(DirOptions{Dir: dir}, "bad_name"); err == nil || !strings.Contains(err.Error(), `"bad_name"`) {
		t.Errorf("Issue bad name: err=%v", err)
	}
	if err := Issue(DirOptions{Dir: t.TempDir()}, "x"); err == nil || !strings.Contains(err.Error(), CAFile) {
		t.Errorf("Issue in an empty folder: err=%v, want an error naming %s", err, CAFile)
	}
}

func TestRevoke(t *testing.T) {
	dir := t.TempDir()
	if err := Init(DirOptions{Dir: dir}, []string{"mysql-1", "mysql-2"}); err != nil {
		t.Fatal(err)
	}
	ca, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s1 := readLeaf(t, dir, "mysql-1").SerialNumber
	if err := Revoke(DirOptions{Dir: dir}, "mysql-1"); err != nil {
		t.Fatal(err)
	}
	rl := readCRL(t, dir, ca.Cert)
	if rl.Number.Int64() != 2 || len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Cmp(s1) != 0 {
		t.Fatalf("CRL after revoke: number %v entries %v, want 2 and [%v]", rl.Number, serials(rl.RevokedCertificateEntries), s1)
	}
	checkMode(t, filepath.Join(dir, CRLFile), 0o644)
	if err := Revoke(DirOptions{Dir: dir}, "mysql-1"); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("second revoke: err=%v, want already revoked", err)
	}
	if err := Revoke(DirOptions{Dir: dir}, "mysql-9"); err == nil || !strings.Contains(err.Error(), `"mysql-9"`) {
		t.Errorf("revoke unknown member: err=%v", err)
	}

	// Renew the revoked member, then revoke the new one: both serials are listed.
	if err := Issue(DirOptions{Dir: dir, Force: true}, "mysql-1"); err != nil {
		t.Fatal(err)
	}
	s1b := readLeaf(t, dir, "mysql-1").SerialNumber
	if err := Revoke(DirOptions{Dir: dir}, "mysql-1"); err != nil {
		t.Fatal(err)
	}
	rl = readCRL(t, dir, ca.Cert)
	if got, want := strings.Join(serials(rl.RevokedCertificateEntries), ","), s1.String()+","+s1b.String(); rl.Number.Int64() != 3 || got != want {
		t.Errorf("CRL %v lists %s, want number 3 listing %s", rl.Number, got, want)
	}
	st := readState(t, dir)
	if st.NextCRLNumber != 4 || len(st.Revoked) != 2 || st.Revoked[0].Member != "mysql-1" {
		t.Errorf("state after two revokes: next %d revoked %+v", st.NextCRLNumber, st.Revoked)
	}

	if err := UpdateCRL(dir); err != nil {
		t.Fatal(err)
	}
	rl2 := readCRL(t, dir, ca.Cert)
	if rl2.Number.Int64() != 4 || len(rl2.RevokedCertificateEntries) != 2 {
		t.Errorf("UpdateCRL gave number %v with %d entries, want 4 with 2", rl2.Number, len(rl2.RevokedCertificateEntries))
	}
	if !rl2.RevokedCertificateEntries[0].RevocationTime.Equal(rl.RevokedCertificateEntries[0].RevocationTime) {
		t.Error("UpdateCRL changed a revocation time")
	}
}

func TestOpenDirErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CAFile)) {
		t.Errorf("OpenDir of empty folder: err=%v, want an error naming %s", err, CAFile)
	}
	if err := Init(DirOptions{Dir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	other, err := NewRootCA("other")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	if err := WriteFile(keyPath, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), keyPath) {
		t.Errorf("OpenDir with wrong key: err=%v", err)
	}
	if err := WriteFile(keyPath, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), keyPath) {
		t.Errorf("OpenDir with junk key: err=%v", err)
	}

	// A ca.pem holding intermediate then root, with the intermediate's key.
	inter, err := other.NewIntermediate("inter")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, CAFile), inter.ChainPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(keyPath, inter.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.Equal(inter.Cert) || ca.Parent == nil || !ca.Parent.Cert.Equal(other.Cert) || ca.Parent.Key != nil {
		t.Error("OpenDir did not rebuild intermediate -> root")
	}
	leaf, err := ca.Issue(LeafTemplate{CommonName: "via-inter"})
	if err != nil {
		t.Fatal(err)
	}
	if got := parsePEMCerts(t, leaf.ChainPEM); len(got) != 2 {
		t.Errorf("leaf chain has %d certs, want 2", len(got))
	}

	// Corrupt state.json: Issue names the file.
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"version":1,"next_crl_number":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Issue(DirOptions{Dir: dir}, "x")
	if err == nil || !strings.Contains(err.Error(), StateFile) || !strings.Contains(err.Error(), "next_crl_number") {
		t.Errorf("Issue with bad state: err=%v", err)
	}
}

// TestCRLURL: --crl-url puts the CRL's URL into every member certificate
// as its distribution point, Init keeps it for later issues, and anything
// but an http:// URL is refused before a file is written.
func TestCRLURL(t *testing.T) {
	dir := t.TempDir()
	const url = "http://ca.test/crl.pem"
	if err := Init(DirOptions{Dir: dir, CRLURL: url}, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := Issue(DirOptions{Dir: dir}, "b"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b"} {
		if c := readLeaf(t, dir, m); len(c.CRLDistributionPoints) != 1 || c.CRLDistributionPoints[0] != url {
			t.Errorf("%s's distribution points: %v, want %s", m, c.CRLDistributionPoints, url)
		}
	}
	bad := t.TempDir()
	for _, u := range []string{"https://ca.test/crl.pem", "ldap://ca.test/crl", "ca.test/crl.pem"} {
		if err := Init(DirOptions{Dir: bad, CRLURL: u}, []string{"a"}); err == nil || !strings.Contains(err.Error(), "is not an http:// URL") {
			t.Errorf("CRL URL %s: %v", u, err)
		}
	}
	if entries, _ := os.ReadDir(bad); len(entries) != 0 {
		t.Errorf("a refused init wrote %d files", len(entries))
	}
}
