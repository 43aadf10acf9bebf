package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"

	"github.com/groupwire/groupwire/certs/devpki"
)

func tlsPair(t *testing.T, l *devpki.Leaf) *tls.Certificate {
	t.Helper()
	c, err := l.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestStoreSetCertificate(t *testing.T) {
	p := newTestPKI(t)
	writeFile(t, p.path("ca.pem"), p.inter.ChainPEM())
	s, err := NewStore("channel group", Source{CA: p.path("ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if s.Current().Cert != nil {
		t.Fatal("store without ssl_cert has a certificate")
	}
	filesOnly := s.Current().Digest

	first := tlsPair(t, p.leaf)
	if err := s.SetCertificate(first); err != nil {
		t.Fatalf("SetCertificate: %v", err)
	}
	snap1 := s.Current()
	if snap1.Cert != first || snap1.Roots == nil {
		t.Fatalf("snapshot after SetCertificate: cert %p (want %p), roots %v", snap1.Cert, first, snap1.Roots)
	}
	if snap1.Digest == filesOnly {
		t.Fatal("Digest unchanged by a new certificate: TLS sessions would resume with the old one")
	}
	if err := s.SetCertificate(first); err != nil || s.Current() != snap1 {
		t.Fatalf("setting the same certificate again swapped the snapshot (err %v)", err)
	}

	// A reload of unchanged files keeps the supplied certificate and digest.
	if changed, err := s.Reload(); err != nil || changed || s.Current().Cert != first {
		t.Fatalf("Reload of unchanged files: changed %v, err %v, cert kept %v", changed, err, s.Current().Cert == first)
	}
	// A changed CA file is picked up, still with the supplied certificate.
	writeFile(t, p.path("ca.pem"), p.root.CertPEM)
	if changed, err := s.Reload(); err != nil || !changed {
		t.Fatalf("Reload of a changed ssl_ca: changed %v, err %v", changed, err)
	}
	snap2 := s.Current()
	if snap2.Cert != first || snap2.Digest == snap1.Digest {
		t.Fatalf("after ssl_ca changed: cert kept %v, digest changed %v", snap2.Cert == first, snap2.Digest != snap1.Digest)
	}

	// A renewal: new serial, new digest.
	second := tlsPair(t, p.issue(t, devpki.LeafTemplate{CommonName: "mysql-2", Serial: big.NewInt(0x1003)}))
	if err := s.SetCertificate(second); err != nil {
		t.Fatal(err)
	}
	if s.Current().Cert != second || s.Current().Digest == snap2.Digest {
		t.Fatal("renewed certificate not swapped in with a new digest")
	}

	// A key of another certificate is refused and the current one stays.
	bad := &tls.Certificate{Certificate: first.Certificate, PrivateKey: second.PrivateKey}
	err = s.SetCertificate(bad)
	if err == nil || !strings.Contains(err.Error(), "channel group: set certificate: private key does not match") {
		t.Fatalf("mismatched key: err %v", err)
	}
	if err := s.SetCertificate(&tls.Certificate{}); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Fatalf("empty certificate: err %v", err)
	}
	if s.Current().Cert != second {
		t.Fatal("a refused certificate replaced the current one")
	}
}

func TestStoreSetCertificateRefusesFileCertificate(t *testing.T) {
	p := newTestPKI(t)
	s, err := NewStore("channel group", p.writeBasic(t))
	if err != nil {
		t.Fatal(err)
	}
	err = s.SetCertificate(tlsPair(t, p.leaf))
	if err == nil || !strings.Contains(err.Error(), "ssl_cert/ssl_key") || !strings.Contains(err.Error(), p.path("cert.pem")) {
		t.Fatalf("SetCertificate on a store with ssl_cert: err %v", err)
	}
}

func TestStoreSetCertificateParsesLeaf(t *testing.T) {
	p := newTestPKI(t)
	s, err := NewStore("x", Source{})
	if err != nil {
		t.Fatal(err)
	}
	c := tlsPair(t, p.leaf)
	c.Leaf = nil
	if err := s.SetCertificate(c); err != nil {
		t.Fatal(err)
	}
	if s.Current().Cert.Leaf == nil || s.Current().Cert.Leaf.SerialNumber.Int64() != 0x1002 {
		t.Fatal("Leaf not set by SetCertificate")
	}
}

func TestACMEConfigValidate(t *testing.T) {
	good := ACMEConfig{Directory: "https://ca.internal:9000/acme/acme/directory", Name: "mysql-1", Storage: "/var/lib/gw", Email: "ops@example.com"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	ip := good
	ip.Name, ip.HTTPListen = "127.0.0.11", "127.0.0.11:8080"
	if err := ip.Validate(); err != nil {
		t.Fatalf("valid config with IP name: %v", err)
	}
	for _, tc := range []struct {
		change func(*ACMEConfig)
		want   string
	}{
		{func(c *ACMEConfig) { c.Directory = "" }, "acme directory: not set"},
		{func(c *ACMEConfig) { c.Directory = "http://ca:9000/dir" }, `acme directory "http://ca:9000/dir": want an https:// URL`},
		{func(c *ACMEConfig) { c.Directory = "https://%zz" }, `acme directory "https://%zz": parse`},
		{func(c *ACMEConfig) { c.Name = "" }, "acme names: no name"},
		{func(c *ACMEConfig) { c.Name = "a b" }, `acme names: "a b" cannot be the subject`},
		{func(c *ACMEConfig) { c.Storage = "" }, "acme storage: not set"},
		{func(c *ACMEConfig) { c.Email = "" }, "acme email: not set"},
		{func(c *ACMEConfig) { c.Email = "ops" }, `acme email: "ops" is not an email address`},
		{func(c *ACMEConfig) { c.RenewCheckInterval = -time.Second }, "acme renew_check_interval: must not be negative"},
		{func(c *ACMEConfig) { c.HTTPListen = "127.0.0.1" }, `acme http_listen "127.0.0.1": address 127.0.0.1: missing port`},
		{func(c *ACMEConfig) { c.HTTPListen = ":99999" }, `acme http_listen ":99999": port "99999" is not a number in 1-65535`},
	} {
		c := good
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want prefix %q", c, err, tc.want)
		}
		if _, err2 := NewACME(c, zerolog.Nop()); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("NewACME(%+v) = %v, want the Validate error", c, err2)
		}
	}
}

func TestNewACMEReadsCARoot(t *testing.T) {
	p := newTestPKI(t)
	cfg := ACMEConfig{Directory: "https://127.0.0.1:14000/dir", Name: "mysql-1", Storage: t.TempDir(), Email: "ops@example.com"}

	cfg.CARoot = p.path("missing.pem")
	if _, err := NewACME(cfg, zerolog.Nop()); err == nil || !strings.HasPrefix(err.Error(), "load acme ca_root "+cfg.CARoot+": ") {
		t.Errorf("missing ca_root: %v", err)
	}
	cfg.CARoot = p.path("garbage.pem")
	writeFile(t, cfg.CARoot, []byte("not a certificate\n"))
	if _, err := NewACME(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "no PEM CERTIFICATE block") {
		t.Errorf("garbage ca_root: %v", err)
	}
	cfg.CARoot = p.path("root.pem")
	writeFile(t, cfg.CARoot, p.root.CertPEM)
	a, err := NewACME(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.root.Cert.Verify(x509.VerifyOptions{Roots: a.roots}); err != nil {
		t.Errorf("ca_root not in the directory's trust pool: %v", err)
	}
}

func TestACMERenewCheckInterval(t *testing.T) {
	a := &ACME{}
	now := time.Now()
	leaf := func(life time.Duration) *x509.Certificate {
		return &x509.Certificate{NotBefore: now, NotAfter: now.Add(life)}
	}
	for _, tc := range []struct {
		leaf *x509.Certificate
		want time.Duration
	}{
		{nil, 10 * time.Minute},
		{leaf(90 * 24 * time.Hour), 10 * time.Minute},
		{leaf(2 * time.Hour), 6 * time.Minute},
		{leaf(120 * time.Second), 6 * time.Second},
		{leaf(10 * time.Second), time.Second},
	} {
		if got := a.renewCheckInterval(tc.leaf); got != tc.want {
			t.Errorf("lifetime %v: interval %v, want %v", tc.leaf, got, tc.want)
		}
	}
	a.cfg.RenewCheckInterval = 42 * time.Second
	if got := a.renewCheckInterval(leaf(time.Hour)); got != 42*time.Second {
		t.Errorf("configured interval ignored: %v", got)
	}
}

func TestNewerCertificate(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	mk := func(serial int64, nb, na time.Time) *x509.Certificate {
		return p.issue(t, devpki.LeafTemplate{CommonName: "m", Serial: big.NewInt(serial), NotBefore: nb, NotAfter: na}).Cert
	}
	old := mk(1, now.Add(-time.Hour), now.Add(time.Hour))
	later := mk(2, now, now.Add(time.Hour))
	longer := mk(3, now.Add(-time.Hour), now.Add(2*time.Hour))
	switch {
	case !newer(later, old):
		t.Error("later NotBefore is not newer")
	case newer(old, later):
		t.Error("earlier NotBefore is newer")
	case !newer(longer, old):
		t.Error("same NotBefore, later NotAfter is not newer")
	case newer(old, old):
		t.Error("a certificate is newer than itself")
	}
}

func TestZapToZerolog(t *testing.T) {
	var buf bytes.Buffer
	zl := newZapLogger(zerolog.New(&buf).Level(zerolog.DebugLevel)).Named("maintenance")
	zl.Debug("hidden: certmagic's debug is zerolog's trace")
	zl.With(zap.String("cache", "0x1")).Info("certificate obtained", zap.String("identifier", "mysql-1"))
	zl.Error("renewing failed")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (debug filtered out):\n%s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "debug", "component": "certmagic", "logger": "maintenance", "cache": "0x1", "identifier": "mysql-1", "message": "certificate obtained"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("field %s = %v, want %v (line %s)", k, first[k], v, lines[0])
		}
	}
	if !strings.Contains(lines[1], `"level":"error"`) {
		t.Errorf("error line: %s", lines[1])
	}
}

func TestACMEAttachHandsOverCurrent(t *testing.T) {
	p := newTestPKI(t)
	a := &ACME{cur: tlsPair(t, p.leaf)}
	s, err := NewStore("x", Source{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(s); err != nil {
		t.Fatal(err)
	}
	if s.Current().Cert != a.cur {
		t.Fatal("Attach did not hand the current certificate to the store")
	}
	fileStore, err := NewStore("y", p.writeBasic(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(fileStore); err == nil {
		t.Fatal("Attach of a store with ssl_cert succeeded")
	}
}
