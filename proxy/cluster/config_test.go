package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const threeMembers = `group: orders-gr
tls: {ssl_mode: VERIFY_IDENTITY, ssl_ca: ca.pem, ssl_cert: "${GROUPWIRE_MEMBER}.pem", ssl_key: "${GROUPWIRE_MEMBER}-key.pem"}
channels:
  group: {}
  recovery: {tls: {ssl_mode: DISABLED}}
members:
  mysql-1: {address: "mysql-1:24900", ports: {group: 33061, recovery: 3306}}
  mysql-2: {address: "10.0.0.2:24900", identity: db2.internal, local_ip: 127.0.0.2, ports: {group: 33062, recovery: 3307}}
  mysql-3: {address: "mysql-3:24901", ports: {group: 33063, recovery: 3308}}
`

func mustParse(t *testing.T, yaml, name string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml), name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigPlanRoutes(t *testing.T) {
	cfg := mustParse(t, threeMembers, "/etc/groupwire/cluster.yaml")
	if got, want := cfg.Members(), []string{"mysql-1", "mysql-2", "mysql-3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Members() = %v, want %v", got, want)
	}
	p, err := cfg.Plan("mysql-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOut := []Route{
		{Listen: "127.0.0.2:3306", Channel: "recovery", Peer: "mysql-1", PeerAddress: "mysql-1:24900", PeerIdentity: "mysql-1"},
		{Listen: "127.0.0.2:3308", Channel: "recovery", Peer: "mysql-3", PeerAddress: "mysql-3:24901", PeerIdentity: "mysql-3"},
		{Listen: "127.0.0.2:33061", Channel: "group", Peer: "mysql-1", PeerAddress: "mysql-1:24900", PeerIdentity: "mysql-1"},
		{Listen: "127.0.0.2:33063", Channel: "group", Peer: "mysql-3", PeerAddress: "mysql-3:24901", PeerIdentity: "mysql-3"},
	}
	if !reflect.DeepEqual(p.Outbound, wantOut) {
		t.Errorf("Outbound =\n%+v\nwant\n%+v", p.Outbound, wantOut)
	}
	wantIn := []Delivery{{Channel: "group", Target: "127.0.0.2:33062"}, {Channel: "recovery", Target: "127.0.0.2:3307"}}
	if !reflect.DeepEqual(p.Inbound, wantIn) {
		t.Errorf("Inbound = %+v, want %+v", p.Inbound, wantIn)
	}
	wantMembers := []MemberInfo{
		{Name: "mysql-1", Address: "mysql-1:24900", Identity: "mysql-1"},
		{Name: "mysql-2", Address: "10.0.0.2:24900", Identity: "db2.internal"},
		{Name: "mysql-3", Address: "mysql-3:24901", Identity: "mysql-3"},
	}
	if !reflect.DeepEqual(p.Members, wantMembers) {
		t.Errorf("Members = %+v, want %+v", p.Members, wantMembers)
	}
	if p.Group != "orders-gr" || p.Member != "mysql-2" || p.LocalIP != "127.0.0.2" || p.Listen != ":24900" || p.Admin != "" {
		t.Errorf("plan header = %q %q %q %q %q", p.Group, p.Member, p.LocalIP, p.Listen, p.Admin)
	}
	if p.ReloadInterval != 30*time.Second || !p.CloseOnExpiry || p.Link.DialTimeout != 5*time.Second ||
		p.Link.HandshakeTimeout != 10*time.Second || p.IdleTimeout != 0 || p.AllowNonLoopback {
		t.Errorf("defaults not applied: %+v", p)
	}
	if len(p.Channels) != 2 || p.Channels[0].Name != "group" || p.Channels[1].Name != "recovery" {
		t.Fatalf("channels = %+v", p.Channels)
	}
	group := p.Channels[0]
	if group.Source.CA != "/etc/groupwire/ca.pem" || group.Source.Cert != "/etc/groupwire/mysql-2.pem" ||
		group.Source.Key != "/etc/groupwire/mysql-2-key.pem" {
		t.Errorf("group source = %+v, want paths resolved against the cluster file's folder", group.Source)
	}
	if group.Options.SSLCert != "mysql-2.pem" {
		t.Errorf("group options keep the expanded value as written, got ssl_cert %q", group.Options.SSLCert)
	}
	if rec := p.Channels[1]; rec.Source.Cert != "" || rec.Source.CA != "" {
		t.Errorf("DISABLED channel has files: %+v", rec.Source)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].String(), "warning: channels.recovery.tls.ssl_mode: DISABLED") {
		t.Errorf("warnings = %v", p.Warnings)
	}
}

func TestConfigPlanEnv(t *testing.T) {
	cfg := mustParse(t, threeMembers, "cluster.yaml")
	// ${GROUPWIRE_MEMBER} is always the member planned, whatever the
	// environment says: `run`, `check` and `status` agree.
	env := map[string]string{"GROUPWIRE_MEMBER": "custom"}
	p, err := cfg.Plan("mysql-1", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Channels[0].Source.Cert; got != "mysql-1.pem" {
		t.Errorf("ssl_cert = %q, want mysql-1.pem (GROUPWIRE_MEMBER=custom in the environment)", got)
	}
	p, err = cfg.Plan("mysql-3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Channels[0].Source.Cert; got != "mysql-3.pem" {
		t.Errorf("ssl_cert = %q, want mysql-3.pem", got)
	}
}

func TestConfigPlanUnknownMember(t *testing.T) {
	cfg := mustParse(t, threeMembers, "cluster.yaml")
	_, err := cfg.Plan("mysql-9", nil)
	if err == nil || !strings.Contains(err.Error(), `unknown member "mysql-9" (members: mysql-1, mysql-2, mysql-3)`) ||
		!strings.Contains(err.Error(), "cluster.yaml") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigPlanTimingsAndCiphers(t *testing.T) {
	yaml := `group: g
tls: {ssl_mode: REQUIRED, ssl_cert: c.pem, ssl_key: k.pem, ssl_cipher: "ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA", tls_version: TLSv1.3}
channels: {group: {}}
members:
  a: {address: "a:1", ports: {group: 2}}
  b: {address: "b:1", ports: {group: 3}}
reload_interval: 2m
close_on_expiry: false
allow_non_loopback: true
dial_timeout: 1s
handshake_timeout: 2s
idle_timeout: 1h
admin: "127.0.0.1:9900"
`
	p, err := mustParse(t, yaml, "c.yaml").Plan("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.ReloadInterval != 2*time.Minute || p.CloseOnExpiry || !p.AllowNonLoopback || p.Link.DialTimeout != time.Second ||
		p.Link.HandshakeTimeout != 2*time.Second || p.IdleTimeout != time.Hour || p.Admin != "127.0.0.1:9900" {
		t.Errorf("timings not taken: %+v", p)
	}
	ch := p.Channels[0]
	if !reflect.DeepEqual(ch.Params.CipherSuites, []uint16{0xC02B}) || !reflect.DeepEqual(ch.DroppedCiphers, []string{"DHE-RSA-AES256-SHA"}) {
		t.Errorf("ciphers = %x dropped %v", ch.Params.CipherSuites, ch.DroppedCiphers)
	}
	if ch.Params.MinVersion != 0x0304 || ch.Params.MaxVersion != 0x0304 {
		t.Errorf("versions = %x..%x", ch.Params.MinVersion, ch.Params.MaxVersion)
	}
	var warned []string
	for _, w := range p.Warnings {
		warned = append(warned, w.Path)
	}
	if want := []string{"channels.group.tls.ssl_mode", "tls.ssl_cipher"}; !reflect.DeepEqual(warned, want) {
		t.Errorf("warnings at %v, want %v (%v)", warned, want, p.Warnings)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.yaml")
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing file: err = %v, want it to name %s", err, path)
	}
	if err := os.WriteFile(path, []byte(threeMembers), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Plan("mysql-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Channels[0].Source.Key, filepath.Join(dir, "mysql-1-key.pem"); got != want {
		t.Errorf("ssl_key = %q, want %q", got, want)
	}

	if err := os.WriteFile(path, []byte("group: g\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(path)
	var cerr *ConfigError
	if !errors.As(err, &cerr) || cerr.File != path || cerr.Problems[0] != (Problem{Path: "bogus", Msg: "unknown key (line 2)"}) {
		t.Errorf("err = %#v", err)
	}
}

func TestExpandEnv(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"A": "alpha", "B_2": "", "MEMBER": "m1"}[k]
		return v, ok
	}
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x${A}y${MEMBER}z", "xalphaym1z", ""},
		{"${B_2}", "", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"cost$5", "cost$5", ""},
		{"end$", "end$", ""},
		{"$A", "$A", ""}, // only the braced form expands
		{"${NOPE}", "", "environment variable NOPE is not set"},
		{"${A", "", "unterminated ${"},
		{"${}", "", `bad variable name ""`},
		{"${A-B}", "", `bad variable name "A-B"`},
	}
	for _, tc := range tests {
		got, err := expandEnv(tc.in, env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandEnv(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"127.0.0.1:24900", "127.0.0.1:24900", ""},
		{"0.0.0.0:24900", "0.0.0.0:24900", ""},
		{"[::1]:24900", "[::1]:24900", ""},
		{"[::]:24900", "[::]:24900", ""},
		{"::1:24900", "", "needs brackets"},
		{":24900", "", "refusing to listen on all interfaces"},
		{"127.0.0.1", "", "missing port"},
		{"127.0.0.1:0", "", "not a number from 1 to 65535"},
		{"127.0.0.1:65536", "", "not a number from 1 to 65535"},
		{"db.internal:24900", "", "is not an IP address"},
		{`{{ GetAllInterfaces | include "flags" "loopback" | include "type" "IPv4" | attr "address" }}:24900`, "127.0.0.1:24900", ""},
		{`{{ GetAllInterfaces | include "name" "^no-such-if0$" | attr "address" }}:24900`, "", `template gave ":24900": no address matched`},
		{`{{ GetAllInterfaces | include "flags" "loopback" | include "type" "IPv4" | attr "address" }}`, "", "missing port"},
	}
	for _, tc := range tests {
		got, err := listenAddr(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("listenAddr(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("listenAddr(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestConfigErrorText(t *testing.T) {
	one := &ConfigError{File: "c.yaml", Problems: []Problem{{Path: "group", Msg: "not set"}}}
	if got, want := one.Error(), "invalid cluster file c.yaml: group: not set"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	two := &ConfigError{Problems: []Problem{{Path: "a", Msg: "x"}, {Msg: "file is empty"}}}
	if got, want := two.Error(), "invalid cluster file (2 problems):\n  a: x\n  file is empty"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
