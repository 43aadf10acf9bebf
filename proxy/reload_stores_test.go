package proxy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// TestReloadKeepsStoresOfUnchangedFiles: a reload keeps the store of a
// channel whose files did not change (so its watch, reload history and
// counters carry over) and loads a new store for a channel whose files
// did.
func TestReloadKeepsStoresOfUnchangedFiles(t *testing.T) {
	g, r, _ := startGroup(t, localgroup.Options{Mode: "VERIFY_IDENTITY"})
	sc := r.Sidecars["mysql-1"]
	before := proxy.Stores(sc)
	plan, err := g.Plan("mysql-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Channels) < 2 {
		t.Fatalf("test premise: the group has %d channel(s), want 2 (one kept, one reloaded)", len(plan.Channels))
	}
	moved := plan.Channels[0].Name
	pem, err := os.ReadFile(plan.Channels[0].Source.Cert)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(copied, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	plan.Channels[0].Source.Cert = copied // the same certificate, at a new path
	if err := sc.ReloadConfig(func() (*cluster.Plan, error) { return plan, nil }); err != nil {
		t.Fatal(err)
	}
	after := proxy.Stores(sc)
	for name, st := range before {
		kept := after[name] == st
		if want := name != moved; kept != want {
			t.Errorf("channel %s: store kept %v, want %v (%s's ssl_cert moved)", name, kept, want, moved)
		}
	}
}
