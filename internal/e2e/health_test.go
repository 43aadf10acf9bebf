package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/groupwire/groupwire/proxy"
)

// healthInterval is the test group's probe_interval.
const healthInterval = 500 * time.Millisecond

// TestPairHealth is the per-pair health issue's acceptance: a group with
// admin listeners and no member traffic at all. One member's sidecar
// stops: both others show their pairs with it down (metrics, /status,
// `groupwire status` exiting non-zero) while the pair between them shows
// up. It starts again: every pair shows up.
func TestPairHealth(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		ExtraYAML: fmt.Sprintf("probe_interval: %v\n", healthInterval)})
	if err != nil {
		t.Fatal(err)
	}
	procs := startSidecars(t, g)
	for _, m := range g.Members {
		waitPairs(t, g, m.Name, map[string]bool{}) // every pair up
	}
	stopProcess(t, procs["mysql-3"])
	stopped := time.Now()
	for _, m := range []string{"mysql-1", "mysql-2"} {
		waitPairs(t, g, m, map[string]bool{"mysql-3": true})
		t.Logf("%s shows its pairs with mysql-3 down %v after it stopped", m, time.Since(stopped).Round(time.Millisecond))
		if code, _ := httpGet(t, "http://"+g.Member(m).IP+":9900/readyz"); code != 200 {
			t.Errorf("%s is not ready while a peer is down: /readyz %d (it is about this sidecar alone)", m, code)
		}
		checkStatusPage(t, "http://"+g.Member(m).IP+":9900/", map[string]string{"mysql-3": "down", otherThan(m): "up"})
		out, err := runCmd(t, "status", "--admin", g.Member(m).IP+":9900")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "DOWN") || !strings.Contains(out, "connection refused") {
			t.Fatalf("groupwire status on %s with mysql-3 down: %v\n%s", m, err, out)
		}
	}
	procs["mysql-3"] = startProcess(t, "run", "--config", g.ConfigPath, "--member", "mysql-3", "--log-format", "json")
	started := time.Now()
	for _, m := range g.Members {
		waitPairs(t, g, m.Name, map[string]bool{})
	}
	t.Logf("every pair up again %v after mysql-3 restarted", time.Since(started).Round(time.Millisecond))
	if out, err := runCmd(t, "status", "--config", g.ConfigPath, "--member", "mysql-1"); err != nil || !strings.Contains(out, "mysql-3") {
		t.Fatalf("groupwire status with every pair up: %v\n%s", err, out)
	}
}

// otherThan is the survivor that is not m.
func otherThan(m string) string {
	if m == "mysql-1" {
		return "mysql-2"
	}
	return "mysql-1"
}

// checkStatusPage fetches the status page with a plain GET and checks
// that every pair cell of each peer in want has that state. The page is
// rendered on the server, without scripts, so a GET sees what a browser
// shows; a browser refreshes it through its meta tag.
func checkStatusPage(t *testing.T, url string, want map[string]string) {
	t.Helper()
	code, page := httpGet(t, url)
	if code != 200 {
		t.Fatalf("GET %s: %d", url, code)
	}
	if !strings.Contains(page, `<meta http-equiv="refresh" content="2">`) {
		t.Errorf("the status page does not refresh itself (no meta refresh):\n%s", page)
	}
	for peer, state := range want {
		for _, ch := range []string{"group", "recovery"} {
			cell := fmt.Sprintf(`data-peer="%s" data-channel="%s" data-state="%s"`, peer, ch, state)
			if !strings.Contains(page, cell) {
				t.Errorf("the status page lacks %s:\n%s", cell, page)
			}
		}
	}
}

// waitPairs waits until member's /status and metrics show exactly the
// pairs with the peers in down as down and every other pair as up. A pair
// must change within two probe intervals; the bound is generous for a
// loaded machine, and a pair that never changes still fails.
func waitPairs(t *testing.T, g *localgroup.Group, member string, down map[string]bool) {
	t.Helper()
	base := "http://" + g.Member(member).IP + ":9900"
	deadline := time.Now().Add(20 * healthInterval)
	for {
		msg := pairsDiffer(t, base, down)
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", member, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pairsDiffer says how member's status and metrics differ from the wanted
// pair states, or "" when they agree.
func pairsDiffer(t *testing.T, base string, down map[string]bool) string {
	_, body := httpGet(t, base+"/status")
	var st proxy.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return fmt.Sprintf("/status: %v", err)
	}
	if len(st.Peers) != 4 {
		return fmt.Sprintf("/status has %d pairs, want 4", len(st.Peers))
	}
	for _, p := range st.Peers {
		if p.Up == down[p.Peer] {
			return fmt.Sprintf("/status: %s [%s] up=%v (last error %q)", p.Peer, p.Channel, p.Up, p.LastError)
		}
		want := 1.0
		if down[p.Peer] {
			want = 0
			if p.LastError == "" {
				return fmt.Sprintf("/status: %s [%s] down with no error", p.Peer, p.Channel)
			}
		}
		metric := fmt.Sprintf(`groupwire_peer_up{channel=%q,peer=%q}`, p.Channel, p.Peer)
		if got := metricSum(t, base+"/metrics", metric); got != want {
			return fmt.Sprintf("%s = %v, want %v", metric, got, want)
		}
	}
	return ""
}

// stopProcess sends SIGTERM and waits for the process to exit.
func stopProcess(t *testing.T, p *process) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("sidecar did not stop on SIGTERM")
	}
}

// httpGet fetches url as JSON with a deadline.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	return testutil.HTTPGet(t, url, "application/json")
}
