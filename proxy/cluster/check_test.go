package cluster

import (
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

// checkPKI is a development PKI written to a temporary folder, with a
// cluster file naming its files.
type checkPKI struct {
	dir  string
	root *devpki.CA
}

func newCheckPKI(t *testing.T) *checkPKI {
	t.Helper()
	root, err := devpki.NewRootCA("groupwire test root")
	if err != nil {
		t.Fatal(err)
	}
	k := &checkPKI{dir: t.TempDir(), root: root}
	k.write(t, "ca.pem", root.CertPEM)
	return k
}

func (k *checkPKI) write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(k.dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (k *checkPKI) path(name string) string { return filepath.Join(k.dir, name) }

// issue makes a leaf signed by ca (the root when nil) and writes it as
// NAME.pem and NAME-key.pem.
func (k *checkPKI) issue(t *testing.T, ca *devpki.CA, name string, tmpl devpki.LeafTemplate) *devpki.Leaf {
	t.Helper()
	if ca == nil {
		ca = k.root
	}
	leaf, err := ca.Issue(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	k.write(t, name+".pem", leaf.ChainPEM)
	k.write(t, name+"-key.pem", leaf.KeyPEM)
	return leaf
}

// plan writes a cluster file whose top-level tls block has ssl_mode mode
// and the extra lines, and plans mysql-1.
func (k *checkPKI) plan(t *testing.T, mode string, extra ...string) *Plan {
	t.Helper()
	cluster := "group: g\ntls:\n  ssl_mode: " + mode + "\n  ssl_ca: ca.pem\n" +
		"  ssl_cert: ${GROUPWIRE_MEMBER}.pem\n  ssl_key: ${GROUPWIRE_MEMBER}-key.pem\n"
	for _, e := range extra {
		cluster += "  " + e + "\n"
	}
	cluster += "channels: {group: {}}\nmembers:\n" +
		"  mysql-1: {address: \"mysql-1.db:24900\", ports: {group: 33061}}\n" +
		"  mysql-2: {address: \"mysql-2.db:24900\", ports: {group: 33062}}\n"
	k.write(t, "cluster.yaml", []byte(cluster))
	cfg, err := LoadConfig(k.path("cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Plan("mysql-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantOnly checks that problems hold exactly one problem, at path, of the
// given severity, whose message contains every fragment.
func wantOnly(t *testing.T, got []Problem, path string, sev Severity, fragments ...string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("got %d problems, want 1 at %s:\n%s", len(got), path, problemLines(got))
	}
	p := got[0]
	if p.Path != path || p.Severity != sev {
		t.Errorf("got %s %q, want %s at %q", p.Severity, p.Path, sev, path)
	}
	for _, f := range fragments {
		if !strings.Contains(p.Msg, f) {
			t.Errorf("message %q lacks %q", p.Msg, f)
		}
	}
}

func problemLines(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

var memberDNS = devpki.LeafTemplate{CommonName: "mysql-1", DNSNames: []string{"mysql-1.db"}}

func TestCheckMaterialGood(t *testing.T) {
	k := newCheckPKI(t)
	k.issue(t, nil, "mysql-1", devpki.LeafTemplate{CommonName: "mysql-1", DNSNames: []string{"*.example.internal", "mysql-1.db"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	crl, err := k.root.CRL([]*big.Int{big.NewInt(99)}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	k.write(t, "crl.pem", crl)
	p := k.plan(t, "VERIFY_IDENTITY", "ssl_crl: crl.pem")
	if got := CheckMaterial(p, time.Now()); len(got) != 0 {
		t.Errorf("good material gave problems:\n%s", problemLines(got))
	}
}

func TestCheckMaterialExpiry(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		notBefore time.Time
		notAfter  time.Time
		sev       Severity
		want      string
	}{
		{"expired", now.Add(-48 * time.Hour), now.Add(-time.Hour), SeverityError, "expired on"},
		{"not yet valid", now.Add(time.Hour), now.Add(48 * time.Hour), SeverityError, "is not valid before"},
		{"expiring", now.Add(-time.Hour), now.Add(10*24*time.Hour + time.Hour), SeverityWarning, "in 10 days"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newCheckPKI(t)
			tmpl := memberDNS
			tmpl.NotBefore, tmpl.NotAfter = tc.notBefore, tc.notAfter
			k.issue(t, nil, "mysql-1", tmpl)
			got := CheckMaterial(k.plan(t, "VERIFY_IDENTITY"), now)
			wantOnly(t, got, "channels.group.tls.ssl_cert ("+k.path("mysql-1.pem")+")", tc.sev, tc.want, "CN=mysql-1")
		})
	}
}

func TestCheckMaterialWrongIdentity(t *testing.T) {
	k := newCheckPKI(t)
	k.issue(t, nil, "mysql-1", devpki.LeafTemplate{CommonName: "mysql-1.db", DNSNames: []string{"mysql-9.db"}})
	got := CheckMaterial(k.plan(t, "VERIFY_IDENTITY"), time.Now())
	wantOnly(t, got, "channels.group.tls.ssl_cert ("+k.path("mysql-1.pem")+")", SeverityError,
		`does not name this member's identity "mysql-1.db"`, "DNS:mysql-9.db")

	// VERIFY_CA does not look at names.
	if got := CheckMaterial(k.plan(t, "VERIFY_CA"), time.Now()); len(got) != 0 {
		t.Errorf("VERIFY_CA gave problems:\n%s", problemLines(got))
	}
}

func TestCheckMaterialKeyMismatch(t *testing.T) {
	k := newCheckPKI(t)
	k.issue(t, nil, "mysql-1", memberDNS)
	other := k.issue(t, nil, "other", memberDNS)
	k.write(t, "mysql-1-key.pem", other.KeyPEM)
	got := CheckMaterial(k.plan(t, "VERIFY_IDENTITY"), time.Now())
	wantOnly(t, got, "channels.group.tls.ssl_key ("+k.path("mysql-1-key.pem")+")", SeverityError, "does not match")
}

func TestCheckMaterialRevoked(t *testing.T) {
	k := newCheckPKI(t)
	leaf := k.issue(t, nil, "mysql-1", memberDNS)
	crl, err := k.root.CRL([]*big.Int{leaf.Cert.SerialNumber}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	k.write(t, "crl.pem", crl)
	got := CheckMaterial(k.plan(t, "VERIFY_CA", "ssl_crl: crl.pem"), time.Now())
	wantOnly(t, got, "channels.group.tls.ssl_cert ("+k.path("mysql-1.pem")+")", SeverityError, "revoked", k.path("crl.pem"))
}

func TestCheckMaterialChain(t *testing.T) {
	t.Run("other CA", func(t *testing.T) {
		k := newCheckPKI(t)
		stranger, err := devpki.NewRootCA("stranger")
		if err != nil {
			t.Fatal(err)
		}
		k.issue(t, stranger, "mysql-1", memberDNS)
		got := CheckMaterial(k.plan(t, "VERIFY_CA"), time.Now())
		wantOnly(t, got, "channels.group.tls.ssl_cert ("+k.path("mysql-1.pem")+")", SeverityError, "does not verify against ssl_ca")
		// REQUIRED verifies nothing, so the same files are fine.
		if got := CheckMaterial(k.plan(t, "REQUIRED"), time.Now()); len(got) != 0 {
			t.Errorf("REQUIRED gave problems:\n%s", problemLines(got))
		}
	})
	t.Run("serverAuth only", func(t *testing.T) {
		k := newCheckPKI(t)
		tmpl := memberDNS
		tmpl.ServerAuthOnly = true
		k.issue(t, nil, "mysql-1", tmpl)
		got := CheckMaterial(k.plan(t, "VERIFY_CA"), time.Now())
		wantOnly(t, got, "channels.group.tls.ssl_cert ("+k.path("mysql-1.pem")+")", SeverityError,
			"as a TLS client (dialing links)", "serverAuth and clientAuth")
	})
	t.Run("intermediate in ssl_cert", func(t *testing.T) {
		k := newCheckPKI(t)
		inter, err := k.root.NewIntermediate("groupwire test intermediate")
		if err != nil {
			t.Fatal(err)
		}
		k.issue(t, inter, "mysql-1", memberDNS)
		if got := CheckMaterial(k.plan(t, "VERIFY_IDENTITY"), time.Now()); len(got) != 0 {
			t.Errorf("leaf via intermediate gave problems:\n%s", problemLines(got))
		}
	})
}

func TestCheckMaterialFiles(t *testing.T) {
	k := newCheckPKI(t)
	k.issue(t, nil, "mysql-1", memberDNS)
	if err := os.Remove(k.path("ca.pem")); err != nil {
		t.Fatal(err)
	}
	k.write(t, "mysql-1-key.pem", []byte("not a key\n"))
	got := CheckMaterial(k.plan(t, "VERIFY_CA"), time.Now())
	// Both files are reported: a bad CA file does not hide a bad key.
	if len(got) != 2 {
		t.Fatalf("got %d problems, want 2:\n%s", len(got), problemLines(got))
	}
	if want := "channels.group.tls.ssl_key (" + k.path("mysql-1-key.pem") + ")"; got[0].Path != want {
		t.Errorf("first problem at %q, want %q", got[0].Path, want)
	}
	if want := "channels.group.tls.ssl_ca (" + k.path("ca.pem") + ")"; got[1].Path != want || !strings.Contains(got[1].Msg, "no such file") {
		t.Errorf("second problem %q, want at %q about a missing file", got[1], want)
	}
}

func TestCheckMaterialExpiredCA(t *testing.T) {
	k := newCheckPKI(t)
	k.issue(t, nil, "mysql-1", memberDNS)
	// A month after the root's end, the CA file itself is reported, and so
	// is the leaf (issued for a year).
	got := CheckMaterial(k.plan(t, "VERIFY_CA"), k.root.Cert.NotAfter.Add(30*24*time.Hour))
	want := "channels.group.tls.ssl_ca (" + k.path("ca.pem") + ")"
	found := false
	for _, p := range got {
		if p.Path == want && strings.Contains(p.Msg, "CA certificate") && strings.Contains(p.Msg, "expired on") {
			found = true
		}
	}
	if !found {
		t.Errorf("no expired-CA problem at %s:\n%s", want, problemLines(got))
	}
}

func TestCheckMaterialDisabled(t *testing.T) {
	k := newCheckPKI(t) // no member certificate at all
	p := k.plan(t, "DISABLED")
	if got := CheckMaterial(p, time.Now()); len(got) != 0 {
		t.Errorf("DISABLED gave problems:\n%s", problemLines(got))
	}
}

// TestCheckMaterialCRLDates: an expired CRL is an error (every handshake
// would fail), one expiring within a day a warning.
func TestCheckMaterialCRLDates(t *testing.T) {
	for _, tt := range []struct {
		next time.Time
		sev  Severity
		want string
	}{
		{time.Now().Add(-time.Hour), SeverityError, "expired at"},
		{time.Now().Add(3 * time.Hour), SeverityWarning, "re-sign it before then"},
	} {
		k := newCheckPKI(t)
		k.issue(t, nil, "mysql-1", memberDNS)
		crl, err := k.root.CRL(nil, time.Now().Add(-2*time.Hour), tt.next)
		if err != nil {
			t.Fatal(err)
		}
		k.write(t, "crl.pem", crl)
		got := CheckMaterial(k.plan(t, "VERIFY_CA", "ssl_crl: crl.pem"), time.Now())
		path := "channels.group.tls.ssl_crl (" + k.path("crl.pem") + ")"
		found := false
		for _, p := range got {
			found = found || p.Path == path && p.Severity == tt.sev && strings.Contains(p.Msg, tt.want) && strings.Contains(p.Msg, "groupwire test root")
		}
		if !found {
			t.Errorf("no %s at %s saying %q:\n%s", tt.sev, path, tt.want, problemLines(got))
		}
	}
}

// TestCheckMaterialKeyExposure: a key file others can read is a warning
// at its ssl_key path, and chmod 0400 silences it.
func TestCheckMaterialKeyExposure(t *testing.T) {
	k := newCheckPKI(t)
	k.issue(t, nil, "mysql-1", devpki.LeafTemplate{CommonName: "mysql-1", DNSNames: []string{"mysql-1.db"}})
	p := k.plan(t, "VERIFY_CA")
	key := p.Channels[0].Source.Key
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	wantOnly(t, CheckMaterial(p, time.Now()), "channels.group.tls.ssl_key ("+key+")", SeverityWarning, "mode 0644", "group and every other user")
	if err := os.Chmod(key, 0o400); err != nil {
		t.Fatal(err)
	}
	if got := CheckMaterial(p, time.Now()); len(got) != 0 {
		t.Errorf("a 0400 key gave problems:\n%s", problemLines(got))
	}
}
