package proxy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/groupwire/groupwire/proxy"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return testutil.HTTPGet(t, url, "")
}

// TestAdminEndpoint: metrics, readiness and status of a running sidecar,
// including a failed reload and the CRL's nextUpdate.
func TestAdminEndpoint(t *testing.T) {
	g, _, logs := startGroup(t, localgroup.Options{Mode: "VERIFY_IDENTITY", AdminPort: 9900})
	base := "http://" + g.Member("mysql-1").IP + ":9900"
	if _, err := g.Ping(context.Background(), "mysql-1", "mysql-2", "group", "count me"); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s", code, body)
	}
	var st proxy.Status
	_, body := get(t, base+"/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if st.Member != "mysql-1" || len(st.Channels) != 2 || st.Channels[0].Mode != "VERIFY_IDENTITY" || st.Channels[0].Certificate == nil ||
		st.Channels[0].Certificate.Serial == "" || !st.Channels[0].Reload.OK || len(st.Channels[0].CRLs) != 1 {
		t.Fatalf("/status: %s", body)
	}
	for _, key := range []string{`"ssl_mode"`, `"not_after"`, `"next_update"`, `"peers"`, `"live_links"`, `"bytes_to_peer"`, `"setup_ms"`} {
		if !strings.Contains(body, key) {
			t.Errorf("/status lacks %s:\n%s", key, body)
		}
	}

	pki := g.CAs["group"]
	if err := devpki.WriteFile(pki.CertPath("mysql-1"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs.WaitFor(t, logWait, "reload failed")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, metrics := get(t, base+"/metrics")
		wants := []string{
			`groupwire_links_total{channel="group",direction="out",outcome="ok",peer="mysql-2"} 1`,
			`groupwire_link_bytes_total{channel="group",direction="to_peer",peer="mysql-2"} 9`,
			`groupwire_peer_up{channel="group",peer="mysql-2"} 1`,
			`groupwire_cert_reload_ok{store="channel group"} 0`,
			`groupwire_cert_reloads_total{result="failed",store="channel group"}`,
			`groupwire_crl_next_update_seconds{file="` + pki.CRLPath() + `"`,
			`groupwire_cert_not_after_seconds{serial="` + pki.Leaves["mysql-1"].Cert.SerialNumber.Text(16) + `"`,
			`groupwire_link_setup_seconds_count 1`,
		}
		missing := ""
		for _, w := range wants {
			if !strings.Contains(metrics, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s", missing, metrics)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
