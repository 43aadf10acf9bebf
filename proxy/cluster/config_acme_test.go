package cluster

import (
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
)

// TestPlanACME checks what the acme block plans into: per-key inheritance
// from tls.acme, relative paths resolved against the cluster file's
// folder, ${VAR} expansion, the member's identity as the default name, and
// that files in the nearer block win over an inherited acme block.
func TestPlanACME(t *testing.T) {
	const file = `
group: g
tls:
  ssl_mode: VERIFY_IDENTITY
  ssl_ca: ca.pem
  acme:
    directory: https://ca.internal:9000/acme/acme/directory
    ca_root: step-root.pem
    email: dba@example.com
    storage: acme/${GROUPWIRE_MEMBER}
channels:
  group: {}
  recovery:
    tls:
      acme: {names: [recovery.db.internal], profile: shortlived, renew_check_interval: 2m, http_listen: "127.0.0.2:8080"}
  files:
    tls: {ssl_cert: f.pem, ssl_key: f-key.pem}
members:
  mysql-1: {address: "mysql-1:24900", identity: mysql-1.db.internal, ports: {group: 1001, recovery: 1002, files: 1003}}
  mysql-2: {address: "mysql-2:24900", ports: {group: 2001, recovery: 2002, files: 2003}}
`
	cfg, err := ParseConfig([]byte(file), "/etc/groupwire/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cfg.Plan("mysql-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]ChannelPlan)
	for _, ch := range plan.Channels {
		byName[ch.Name] = ch
	}
	// names unset: the plan fills in the member's identity.
	group := certs.ACMEConfig{
		Name:      "mysql-1.db.internal",
		Directory: "https://ca.internal:9000/acme/acme/directory",
		CARoot:    "/etc/groupwire/step-root.pem",
		Email:     "dba@example.com",
		Storage:   "/etc/groupwire/acme/mysql-1",
	}
	if got := byName["group"].ACME; got == nil || *got != group {
		t.Errorf("group ACME = %+v, want %+v", got, group)
	}
	recovery := group
	recovery.Name, recovery.Profile, recovery.RenewCheckInterval, recovery.HTTPListen = "recovery.db.internal", "shortlived", 2*time.Minute, "127.0.0.2:8080"
	if got := byName["recovery"].ACME; got == nil || *got != recovery {
		t.Errorf("recovery ACME = %+v, want %+v", got, recovery)
	}
	if got := byName["recovery"].ACME.Name; got != "recovery.db.internal" {
		t.Errorf("names ignored: %q", got)
	}
	for _, name := range []string{"group", "recovery"} {
		if src := byName[name].Source; src.Cert != "" || src.Key != "" || src.CA != "/etc/groupwire/ca.pem" {
			t.Errorf("channel %s Source = %+v, want ssl_ca only", name, src)
		}
	}
	files := byName["files"]
	if files.ACME != nil || files.Options.ACME != nil || files.Source.Cert != "/etc/groupwire/f.pem" {
		t.Errorf("files channel: ACME %+v, Source %+v; want its own ssl_cert", files.ACME, files.Source)
	}
}
