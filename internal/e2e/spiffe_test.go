package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/spiffetest"
	"github.com/groupwire/groupwire/internal/testutil"
)

// spiffeID is a member's SPIFFE ID in the tests' trust domain.
func spiffeID(member string) string { return "spiffe://prod.example/groupwire/" + member }

// spiffeGroup is a group whose members get their certificates from a
// Workload API each: one fake agent per member, served by the test.
type spiffeGroup struct {
	g      *localgroup.Group
	ca     *devpki.CA
	agents map[string]*spiffetest.Server
}

// spiffeConfig is member's cluster file: no certificate file at all, the
// Workload API at its agent's socket, SPIFFE IDs as identities (self
// being this member's own).
func (sg *spiffeGroup) config(member, self string) string {
	yaml := sg.g.ClusterYAML(localgroup.FileOptions{})
	yaml = regexp.MustCompile(`(?m)^  ssl_(ca|cert|key|crl): .*\n`).ReplaceAllString(yaml, "")
	yaml = strings.Replace(yaml, "tls:\n", "tls:\n  spiffe: {socket: \""+sg.agents[member].Addr+"\"}\n", 1)
	return regexp.MustCompile(`identity: (mysql-\d)`).ReplaceAllStringFunc(yaml, func(s string) string {
		m := strings.TrimPrefix(s, "identity: ")
		if m == member {
			return `identity: "` + self + `"`
		}
		return `identity: "` + spiffeID(m) + `"`
	})
}

// TestSPIFFEGroup runs three sidecars with no certificate file, each on
// its own Workload API: one starts before its agent and waits; check
// reports the SVID and bundle; an SVID rotation keeps live links; an SVID
// for another ID from the agent is refused and the one in force kept; a
// member whose SVID names another ID than its peers expect is refused
// with the reason; a bundle that drops the issuing CA cuts the links.
func TestSPIFFEGroup(t *testing.T) {
	members := []string{"mysql-1", "mysql-2", "mysql-3"}
	sg := &spiffeGroup{g: reloadGroup(t, members, "VERIFY_IDENTITY"), agents: map[string]*spiffetest.Server{}}
	ca, err := devpki.NewRootCA("spire ca")
	if err != nil {
		t.Fatal(err)
	}
	sg.ca = ca
	paths := map[string]string{}
	for _, m := range members {
		path, cleanup, err := spiffetest.SocketPath("agent.sock")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cleanup)
		paths[m] = path
		sg.agents[m] = &spiffetest.Server{Addr: "unix://" + path}
		if err := os.WriteFile(memberConfig(sg.g, m), []byte(sg.config(m, spiffeID(m))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// mysql-3 starts before its agent: it says so and waits.
	p3 := startProcess(t, "run", "--config", memberConfig(sg.g, "mysql-3"), "--member", "mysql-3", "--log-format", "json")
	waitLog(t, p3, "waiting for the SPIFFE Workload API")
	for _, m := range members {
		sg.agents[m] = listenAgent(t, paths[m])
		resp, _ := spiffetest.Issue(t, ca, spiffeID(m), ca.Cert)
		sg.agents[m].Set(resp)
	}
	out, err := runCmd(t, "check", "--config", memberConfig(sg.g, "mysql-1"), "--member", "mysql-1")
	if err != nil || !strings.Contains(out, "SVID "+spiffeID("mysql-1")+", expires") || !strings.Contains(out, "trust domain prod.example: 1 CA(s): CN=spire ca") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	waitReady(t, adminURL(sg.g, "mysql-3", "/readyz"), p3)
	p1, p2 := runFrom(t, sg.g, "mysql-1"), runFrom(t, sg.g, "mysql-2")
	pingAll(t, sg.g, members)
	if _, body := httpGet(t, adminURL(sg.g, "mysql-1", "/status")); !strings.Contains(body, `"spiffe_id": "`+spiffeID("mysql-1")+`"`) ||
		!strings.Contains(body, `"source": "spiffe unix://`) {
		t.Fatalf("/status does not show the SPIFFE source:\n%s", body)
	}
	to2 := holdLink(t, sg.g, "mysql-1", "mysql-2")

	svidRotationKeepsLinks(t, sg, to2)
	// A reload that leaves tls.spiffe alone keeps the SVID's store.
	reloadWith(t, sg.g, "mysql-2", "ok", strings.Replace(sg.config("mysql-2", spiffeID("mysql-2")), "reload_interval: 1h", "reload_interval: 2h", 1))
	if err := echoLine(to2.c, "mysql-2", "after reload"); err != nil {
		t.Fatalf("held link after mysql-2 reloaded its cluster file: %v", err)
	}
	wrongIDFromAgentIsRefused(t, sg, p3)
	pingAll(t, sg.g, members)
	impostorIsRefused(t, sg, p3, p1)

	// mysql-2's agent goes away: the sidecar says so and keeps its SVID.
	sg.agents["mysql-2"].Close()
	waitLog(t, p2, "SPIFFE Workload API; the SVID and bundle in force stay until they expire")
	pingAll(t, sg.g, []string{"mysql-1", "mysql-2"})

	// A new CA for mysql-1, and a bundle that holds only it: its peers'
	// SVIDs no longer chain, so its live links are cut.
	ca2, err := devpki.NewRootCA("spire ca 2")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := spiffetest.Issue(t, ca2, spiffeID("mysql-1"), ca2.Cert)
	cut := metricSum(t, adminURL(sg.g, "mysql-1", "/metrics"), `groupwire_links_cut_total{channel="group",reason="untrusted"}`)
	sg.agents["mysql-1"].Set(resp)
	if err := to2.cut(); err != nil {
		t.Fatalf("mysql-1's link to mysql-2 after its bundle dropped their CA: %v", err)
	}
	waitLog(t, p1, "SPIFFE trust bundle changed; checking live links")
	waitMetricSum(t, adminURL(sg.g, "mysql-1", "/metrics"), `groupwire_links_cut_total{channel="group",reason="untrusted"}`, cut+1)
}

// listenAgent starts a fake agent at path, stopped when the test ends.
func listenAgent(t *testing.T, path string) *spiffetest.Server {
	t.Helper()
	srv, err := spiffetest.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// svidRotationKeepsLinks: a new SVID for mysql-2 is in force for the next
// handshake, and the held link carries on.
func svidRotationKeepsLinks(t *testing.T, sg *spiffeGroup, held *heldLink) {
	t.Helper()
	resp, leaf := spiffetest.Issue(t, sg.ca, spiffeID("mysql-2"), sg.ca.Cert)
	sg.agents["mysql-2"].Set(resp)
	want := leaf.Cert.SerialNumber.Text(16)
	waitStatus(t, sg.g, "mysql-2", `"serial": "`+want+`"`)
	if err := echoLine(held.c, "mysql-2", "after rotation"); err != nil {
		t.Fatalf("held link after mysql-2's SVID rotated: %v", err)
	}
	pingAll(t, sg.g, []string{"mysql-1", "mysql-2"})
}

// wrongIDFromAgentIsRefused: mysql-3's agent hands out an SVID for another
// SPIFFE ID; the sidecar refuses it, says why, and keeps its own.
func wrongIDFromAgentIsRefused(t *testing.T, sg *spiffeGroup, p3 *process) {
	t.Helper()
	resp, _ := spiffetest.Issue(t, sg.ca, spiffeID("intruder"), sg.ca.Cert)
	sg.agents["mysql-3"].Set(resp)
	waitLog(t, p3, "offers an SVID for "+spiffeID("intruder")+", not for this member's identity "+spiffeID("mysql-3"))
	waitStatus(t, sg.g, "mysql-3", `"spiffe_id": "`+spiffeID("mysql-3")+`"`)
	metrics := adminURL(sg.g, "mysql-3", "/metrics")
	if n := metricSum(t, metrics, `groupwire_cert_source{source="spiffe",store="channel group"}`); n != 1 {
		t.Errorf("groupwire_cert_source for spiffe = %v, want 1", n)
	}
	waitMetricSum(t, metrics, `groupwire_spiffe_updates_total{result="refused",store="channel group"}`, 1)
}

// impostorIsRefused restarts mysql-3 as another SPIFFE ID (its own file
// says so, its agent agrees); mysql-1, which expects mysql-3's ID, refuses
// its links and names the ID it got.
func impostorIsRefused(t *testing.T, sg *spiffeGroup, p3, p1 *process) {
	t.Helper()
	stopProcess(t, p3)
	other := spiffeID("mysql-3-impostor")
	if err := os.WriteFile(memberConfig(sg.g, "mysql-3"), []byte(sg.config("mysql-3", other)), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, _ := spiffetest.Issue(t, sg.ca, other, sg.ca.Cert)
	sg.agents["mysql-3"].Set(resp)
	runFrom(t, sg.g, "mysql-3")
	if _, err := sg.g.Ping(t.Context(), "mysql-3", "mysql-1", "group", "hi"); err == nil {
		t.Fatal("mysql-1 took a link from a peer whose SVID names " + other)
	}
	waitLog(t, p1, other)
}

// waitStatus waits until member's /status holds want. The bound is
// generous: the update it waits for takes milliseconds.
func waitStatus(t *testing.T, g *localgroup.Group, member, want string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, member+"'s /status to hold "+want, func() bool {
		_, body := httpGet(t, adminURL(g, member, "/status"))
		return strings.Contains(body, want)
	})
}
