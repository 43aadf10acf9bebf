package e2e

import (
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
)

// crlPoint is the group CA's CRL distribution point: an HTTP server on
// loopback serving the CA folder's crl.pem as it is on disk, or failing
// as the test says.
type crlPoint struct {
	*httptest.Server
	mu    sync.Mutex
	down  bool   // answer 503
	other []byte // serve this instead of crl.pem
}

func newCRLPoint(t *testing.T, pkiDir string) *crlPoint {
	p := &crlPoint{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		down, other := p.down, p.other
		p.mu.Unlock()
		switch {
		case down:
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case other != nil:
			w.Write(other)
		default:
			http.ServeFile(w, r, filepath.Join(pkiDir, devpki.CRLFile))
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *crlPoint) set(down bool, other []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down, p.other = down, other
}

// TestCRLDistributionPoints runs three sidecars whose certificates, made
// by `groupwire certs init --crl-url`, name a distribution point served
// by the test, with ssl_crl_fetch in place of ssl_crl. check reports the
// point; the server down keeps links working on the cached CRL; a CRL
// signed by another key is refused and reported; a member revoked there
// with `groupwire certs revoke` has its live links cut on the next
// refresh (SIGHUP), and only those.
func TestCRLDistributionPoints(t *testing.T) {
	members := []string{"mysql-1", "mysql-2", "mysql-3"}
	g := reloadGroup(t, members, "VERIFY_IDENTITY")
	pkiDir := g.CAs["group"].Dir
	point := newCRLPoint(t, pkiDir)
	url := point.URL + "/group/crl.pem"
	args := []string{"certs", "init", "--force", "--dir", pkiDir, "--members", strings.Join(members, ","), "--crl-url", url}
	for _, m := range members {
		args = append(args, "--ip", m+"="+g.Member(m).IP)
	}
	mustRun(t, args...)
	yaml := regexp.MustCompile(`ssl_crl: \S+`).ReplaceAllString(g.ClusterYAML(localgroup.FileOptions{}), "ssl_crl_fetch: true")
	procs := map[string]*process{}
	for _, m := range members {
		if err := os.WriteFile(memberConfig(g, m), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkReportsPoint(t, g, point, url)
	for _, m := range members {
		procs[m] = runFrom(t, g, m)
	}
	pingAll(t, g, members)
	if _, body := httpGet(t, adminURL(g, "mysql-1", "/status")); !strings.Contains(body, `"url": "`+url+`"`) {
		t.Fatalf("/status names no fetched CRL from %s:\n%s", url, body)
	}
	to2, to3 := holdLink(t, g, "mysql-1", "mysql-2"), holdLink(t, g, "mysql-1", "mysql-3")
	p1 := procs["mysql-1"]

	point.set(true, nil)
	refresh(t, p1, "HTTP status 503")
	pingAll(t, g, members) // the cached CRL is still valid

	impostor, err := devpki.NewRootCA(devpki.DefaultCAName) // the CA's name, another key
	if err != nil {
		t.Fatal(err)
	}
	forged, err := impostor.CRL([]*big.Int{big.NewInt(1)}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	point.set(false, forged)
	refresh(t, p1, "CRL signature does not verify with the key of its issuer")
	if _, body := httpGet(t, adminURL(g, "mysql-1", "/status")); !strings.Contains(body, "CRL signature does not verify") {
		t.Errorf("/status does not report the forged CRL:\n%s", body)
	}
	for _, h := range []*heldLink{to2, to3} {
		if err := echoLine(h.c, "mysql-"+map[*heldLink]string{to2: "2", to3: "3"}[h], "still"); err != nil {
			t.Fatalf("a held link after a failed refresh: %v", err)
		}
	}

	point.set(false, nil)
	mustRun(t, "certs", "revoke", "--dir", pkiDir, "mysql-3")
	cut := metricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_links_cut_total{channel="group",reason="untrusted"}`)
	p1.cmd.Process.Signal(syscall.SIGHUP)
	if err := to3.cut(); err != nil {
		t.Fatalf("mysql-1's link to the revoked mysql-3: %v", err)
	}
	waitMetricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_links_cut_total{channel="group",reason="untrusted"}`, cut+1)
	if err := echoLine(to2.c, "mysql-2", "after"); err != nil {
		t.Fatalf("the link to mysql-2 after mysql-3 was revoked: %v", err)
	}
	if metricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_crl_fetch_age_seconds{store="channel group",url="`+url+`"}`) <= 0 {
		t.Error("groupwire_crl_fetch_age_seconds is missing for the distribution point")
	}
	if metricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_crl_next_update_seconds{file="`+url+`"`) <= 0 {
		t.Error("groupwire_crl_next_update_seconds does not name the distribution point")
	}
	if failed := metricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_crl_fetches_total{result="failed",store="channel group",url="`+url+`"}`); failed < 2 {
		t.Errorf("groupwire_crl_fetches_total failed = %v, want at least 2", failed)
	}
}

// refresh sends SIGHUP to p and waits for the refresh to fail with want,
// logged.
func refresh(t *testing.T, p *process, want string) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, want)
}

// checkReportsPoint: `groupwire check` fetches each member's distribution
// point and says it answers; with the point down, it fails saying so.
func checkReportsPoint(t *testing.T, g *localgroup.Group, point *crlPoint, url string) {
	t.Helper()
	out, err := runCmd(t, "check", "--config", memberConfig(g, "mysql-1"), "--member", "mysql-1")
	if err != nil || !strings.Contains(out, url+": answers: CRL of CN="+devpki.DefaultCAName+", 0 revoked") {
		t.Fatalf("check with the point up: %v\n%s", err, out)
	}
	point.set(true, nil)
	defer point.set(false, nil)
	out, err = runCmd(t, "check", "--config", memberConfig(g, "mysql-1"), "--member", "mysql-1")
	if err == nil || !strings.Contains(out, "HTTP status 503") || !strings.Contains(out, "peers will refuse this member's certificate") {
		t.Fatalf("check with the point down: %v\n%s", err, out)
	}
}
