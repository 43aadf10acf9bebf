package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/groupwire/groupwire/proxy"
)

// reloadGroup prepares a group of members (one channel, admin on 9900)
// whose sidecars read per-member cluster files, starts the echo services
// of every member, and returns it; no sidecar runs yet.
func reloadGroup(t *testing.T, members []string, mode string) *localgroup.Group {
	t.Helper()
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		Members: members, Channels: []string{"group"}, Mode: mode, ExtraYAML: "reload_interval: 1h\n"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, m := range g.Members {
		echo, err := localgroup.ListenEcho(ctx, m.Name, g.ServiceAddr(m.Name, "group"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(echo.Close)
	}
	return g
}

// memberConfig is the path of member's own cluster file.
func memberConfig(g *localgroup.Group, member string) string {
	return filepath.Join(g.Dir, member+".yaml")
}

// writeConfig writes member's cluster file.
func writeConfig(t *testing.T, g *localgroup.Group, member string, fo localgroup.FileOptions) {
	t.Helper()
	if err := g.WriteConfig(memberConfig(g, member), fo); err != nil {
		t.Fatal(err)
	}
}

// runFrom starts member's sidecar on its own cluster file. If the test
// fails, the sidecar's log is printed.
func runFrom(t *testing.T, g *localgroup.Group, member string) *process {
	t.Helper()
	p := startProcess(t, "run", "--config", memberConfig(g, member), "--member", member, "--log-format", "json")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's sidecar log:\n%s", member, p.logs)
		}
	})
	waitReady(t, adminURL(g, member, "/readyz"), p)
	return p
}

func adminURL(g *localgroup.Group, member, path string) string {
	return "http://" + g.Member(member).IP + ":9900" + path
}

// reloads returns member's count of cluster file reloads with result.
func reloads(t *testing.T, g *localgroup.Group, member, result string) float64 {
	return metricSum(t, adminURL(g, member, "/metrics"), `groupwire_config_reloads_total{result="`+result+`"`)
}

// changeConfig rewrites member's file as fo says and waits until the
// sidecar, which watches it, has counted one more reload with result.
func changeConfig(t *testing.T, g *localgroup.Group, member, result string, fo localgroup.FileOptions) {
	t.Helper()
	reloadWith(t, g, member, result, g.ClusterYAML(fo))
}

// reloadWith writes yaml over member's file in place and waits until the
// sidecar has counted one more reload with result.
func reloadWith(t *testing.T, g *localgroup.Group, member, result, yaml string) {
	t.Helper()
	before := reloads(t, g, member, result)
	if err := os.WriteFile(memberConfig(g, member), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	waitMetricSum(t, adminURL(g, member, "/metrics"), `groupwire_config_reloads_total{result="`+result+`"`, before+1)
}

// pingAll checks every ordered pair of members through the sidecars.
func pingAll(t *testing.T, g *localgroup.Group, members []string) {
	t.Helper()
	for _, from := range members {
		for _, to := range members {
			if from == to {
				continue
			}
			if _, err := g.Ping(context.Background(), from, to, "group", "hi"); err != nil {
				t.Fatalf("%s → %s: %v", from, to, err)
			}
		}
	}
}

// TestClusterFileReload changes a running group through its cluster
// files only: a member is added and removed, an invalid file and one that
// needs a restart are refused with nothing changed, and a member moves its
// link port.
func TestClusterFileReload(t *testing.T) {
	all := []string{"mysql-1", "mysql-2", "mysql-3", "mysql-4"}
	three := all[:3]
	g := reloadGroup(t, all, "VERIFY_IDENTITY")
	procs := map[string]*process{}
	for _, m := range three {
		writeConfig(t, g, m, localgroup.FileOptions{Members: three})
		procs[m] = runFrom(t, g, m)
	}
	pingAll(t, g, three)

	// mysql-4 joins: the three running sidecars open its listeners.
	for _, m := range three {
		changeConfig(t, g, m, "ok", localgroup.FileOptions{})
	}
	writeConfig(t, g, "mysql-4", localgroup.FileOptions{})
	procs["mysql-4"] = runFrom(t, g, "mysql-4")
	pingAll(t, g, all)
	waitLog(t, procs["mysql-1"], `"members_added":["mysql-4"]`)
	pairsAre(t, g, "mysql-1", "mysql-2", "mysql-3", "mysql-4")

	// mysql-4 leaves while mysql-1's member holds a link to it.
	held := holdLink(t, g, "mysql-1", "mysql-4")
	for _, m := range three {
		changeConfig(t, g, m, "ok", localgroup.FileOptions{Members: three})
	}
	if err := held.cut(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, procs["mysql-1"], "removed from the group")
	if c, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-4", "group")); err == nil {
		c.Close()
		t.Fatal("mysql-1 still listens for mysql-4 after it left the group")
	}
	pingAll(t, g, three)
	pairsAre(t, g, "mysql-1", "mysql-2", "mysql-3")

	invalidFileIsRefused(t, g, procs["mysql-1"], three)
	restartNeededIsRefused(t, g, procs["mysql-1"], three)
	identityTakesEffect(t, g, procs["mysql-1"], three)
	movedListenerIsRebound(t, g, procs["mysql-1"], three)
	movedLocalIPTakesEffect(t, g, procs["mysql-1"], three)
	movedPortTakesEffect(t, g, procs, three)
}

// pairsAre waits until `groupwire status -o json` for member lists a pair
// with exactly peers, every one up, and exits 0: a member that joined
// gets its pair, and one that left does not stay behind as a pair down
// (which would make the command exit 1 for ever). The bound is generous:
// the pairs change with the reload and come up with the pings just made.
func pairsAre(t *testing.T, g *localgroup.Group, member string, peers ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := runCmd(t, "status", "--admin", g.Member(member).IP+":9900", "-o", "json")
		var st proxy.Status
		if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
			t.Fatalf("status -o json: %v\n%s", jerr, out)
		}
		var got []string
		for _, p := range st.Peers {
			got = append(got, p.Peer)
		}
		if err == nil && slices.Equal(got, peers) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status lists pairs with %v (exit: %v), want %v, all up:\n%s", member, got, err, peers, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// movedListenerIsRebound: in mysql-1's file mysql-2's service moves to
// another port, so mysql-1's outbound listener for it moves: the new one
// is bound and reaches mysql-2 (whose own sidecar still delivers to the
// port its service runs on), the old one is closed.
func movedListenerIsRebound(t *testing.T, g *localgroup.Group, p1 *process, members []string) {
	port := g.Member("mysql-2").Ports["group"]
	yaml := g.ClusterYAML(localgroup.FileOptions{Members: members})
	moveTo := func(to int) string {
		moved := strings.Replace(yaml, fmt.Sprintf("ports: {group: %d}", port), fmt.Sprintf("ports: {group: %d}", to), 1)
		if moved == yaml {
			t.Fatal("test bug: mysql-2's port not found in the file")
		}
		return moved
	}
	// The new listener is bound before anything changes: a port that is
	// taken fails the reload, and the old listener keeps serving.
	taken, err := net.Listen("tcp", net.JoinHostPort(g.Member("mysql-1").IP, fmt.Sprint(port+200)))
	if err != nil {
		t.Fatal(err)
	}
	reloadWith(t, g, "mysql-1", "failed", moveTo(port+200))
	taken.Close()
	pingAll(t, g, members)
	reloadWith(t, g, "mysql-1", "ok", moveTo(port+100))
	waitLog(t, p1, fmt.Sprintf(`"routes_moved":["mysql-2/group → %s:%d"]`, g.Member("mysql-1").IP, port+100))
	newAddr := net.JoinHostPort(g.Member("mysql-1").IP, fmt.Sprint(port+100))
	c, err := dialMember(g, "mysql-1", newAddr)
	if err != nil {
		t.Fatalf("the moved listener %s: %v", newAddr, err)
	}
	defer c.Close()
	if err := echoLine(c, "mysql-2", "moved"); err != nil {
		t.Fatalf("through the moved listener: %v", err)
	}
	if old, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group")); err == nil {
		old.Close()
		t.Fatal("the old listener still accepts after it moved")
	}
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{Members: members})
	pingAll(t, g, members)
}

// movedLocalIPTakesEffect: mysql-1's local_ip moves to another loopback
// address (its member now runs there). Every outbound listener of mysql-1
// moves with it and the old ones close, and links from the others are
// delivered to the member at its new address.
func movedLocalIPTakesEffect(t *testing.T, g *localgroup.Group, p1 *process, members []string) {
	oldIP := g.Member("mysql-1").IP
	newIP := oldIP[:strings.LastIndex(oldIP, ".")] + ".61"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	moved, err := localgroup.ListenEcho(ctx, "mysql-1 at its new address", net.JoinHostPort(newIP, fmt.Sprint(g.Member("mysql-1").Ports["group"])))
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	yaml := g.ClusterYAML(localgroup.FileOptions{Members: members})
	newYAML := strings.Replace(yaml, "local_ip: "+oldIP+",", "local_ip: "+newIP+",", 1)
	if newYAML == yaml {
		t.Fatal("test bug: mysql-1's local_ip not found in the file")
	}
	reloadWith(t, g, "mysql-1", "ok", newYAML)
	waitLog(t, p1, `"settings_changed":["local_ip"]`)
	for _, peer := range members[1:] {
		c, err := (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(newIP)}}).Dial("tcp", net.JoinHostPort(newIP, fmt.Sprint(g.Member(peer).Ports["group"])))
		if err != nil {
			t.Fatalf("mysql-1's listener for %s on its new local_ip: %v", peer, err)
		}
		err = echoLine(c, peer, "from the new local_ip")
		c.Close()
		if err != nil {
			t.Fatalf("mysql-1 → %s from the new local_ip: %v", peer, err)
		}
		if old, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", peer, "group")); err == nil {
			old.Close()
			t.Fatalf("mysql-1's listener for %s on its old local_ip still accepts", peer)
		}
		in, err := dialMember(g, peer, g.TunnelAddr(peer, "mysql-1", "group"))
		if err != nil {
			t.Fatal(err)
		}
		err = echoLine(in, "mysql-1 at its new address", "to the new local_ip")
		in.Close()
		if err != nil {
			t.Fatalf("%s → mysql-1 delivered to the new local_ip: %v", peer, err)
		}
	}
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{Members: members})
	pingAll(t, g, members)
}

// identityTakesEffect: a peer's new identity applies to new links at once
// (mysql-2's certificate does not name the new one, so they fail), while a
// link set up before keeps working; the old identity back, links work.
func identityTakesEffect(t *testing.T, g *localgroup.Group, p1 *process, members []string) {
	held := holdLink(t, g, "mysql-1", "mysql-2")
	yaml := g.ClusterYAML(localgroup.FileOptions{Members: members})
	renamed := strings.Replace(yaml, "identity: mysql-2,", "identity: mysql-9,", 1)
	if renamed == yaml {
		t.Fatal("test bug: mysql-2's identity not found in the file")
	}
	reloadWith(t, g, "mysql-1", "ok", renamed)
	if _, err := g.Ping(context.Background(), "mysql-1", "mysql-2", "group", "hi"); err == nil {
		t.Fatal("a new link to mysql-2 passed VERIFY_IDENTITY against the identity mysql-9")
	}
	waitLog(t, p1, jsonString(`does not name "mysql-9"`))
	if err := echoLine(held.c, "mysql-2", "still here"); err != nil {
		t.Fatalf("the link set up before the identity changed: %v", err)
	}
	held.c.Close() // or mysql-2's restart below would wait out its drain for it
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{Members: members})
	pingAll(t, g, members)
}

// invalidFileIsRefused: a file with an error is refused with the problem
// groupwire check prints, and the group keeps running as before.
func invalidFileIsRefused(t *testing.T, g *localgroup.Group, p1 *process, members []string) {
	path := memberConfig(g, "mysql-1")
	reloadWith(t, g, "mysql-1", "invalid", g.ClusterYAML(localgroup.FileOptions{Members: members})+"probe_intervl: 1s\n")
	if ok := metricSum(t, adminURL(g, "mysql-1", "/metrics"), "groupwire_config_reload_ok"); ok != 0 {
		t.Errorf("groupwire_config_reload_ok = %v after a refused reload, want 0", ok)
	}
	out, err := runCmd(t, "check", "--config", path, "--member", "mysql-1")
	if err == nil {
		t.Fatalf("check passed the invalid file:\n%s", out)
	}
	problem := checkProblemLine(t, out, "probe_intervl")
	waitLog(t, p1, jsonString(problem))
	pingAll(t, g, members)
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{Members: members, ExtraYAML: "reload_interval: 1h\nidle_timeout: 1h\n"})
	if ok := metricSum(t, adminURL(g, "mysql-1", "/metrics"), "groupwire_config_reload_ok"); ok != 1 {
		t.Errorf("groupwire_config_reload_ok = %v after a good reload, want 1", ok)
	}
}

// checkProblemLine returns the problem check's output states about key,
// from the key on.
func checkProblemLine(t *testing.T, out, key string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, key+":"); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	t.Fatalf("check's output names no %s:\n%s", key, out)
	return ""
}

// jsonString is s as it appears inside a JSON log line's string.
func jsonString(s string) string {
	return strings.NewReplacer(`"`, `\"`, "\t", `\t`).Replace(s)
}

// restartNeededIsRefused: what a running sidecar cannot change, its own
// inbound listener, its admin endpoint and its own member's name, is
// refused with a reload that says a restart is needed, and nothing changes.
func restartNeededIsRefused(t *testing.T, g *localgroup.Group, p1 *process, members []string) {
	ip := g.Member("mysql-1").IP
	yaml := g.ClusterYAML(localgroup.FileOptions{Members: members})
	for _, c := range []struct{ what, from, to, says string }{
		{"listen", fmt.Sprintf(`listen: "%s:24900"`, ip), fmt.Sprintf(`listen: "%s:24901"`, ip),
			"restart needed: listen (this member's inbound listener)"},
		{"admin", fmt.Sprintf(`admin: "%s:9900"`, ip), fmt.Sprintf(`admin: "%s:9901"`, ip),
			jsonString(fmt.Sprintf(`restart needed: admin "%s:9900" → "%s:9901"`, ip, ip))},
		{"the member's name", "  mysql-1: {", "  mysql-1b: {",
			"restart needed: this member, mysql-1, is no longer in the file"},
		{"tls.acme", "tls:\n", fmt.Sprintf("tls:\n  acme: {directory: \"https://%s:1/directory\", email: dba@example.com, ca_root: %q, storage: %q}\n",
			ip, filepath.Join(g.CAs["group"].Dir, "ca.pem"), filepath.Join(g.Dir, "acme")),
			"restart needed: channel group: a new or changed tls.acme"},
	} {
		if c.what == "tls.acme" { // ACME supplies the certificate: the files go
			yaml = regexp.MustCompile(`(?m)^\s*ssl_(cert|key): .*\n`).ReplaceAllString(yaml, "")
		}
		changed := strings.Replace(yaml, c.from, c.to, 1)
		if changed == yaml {
			t.Fatalf("test bug: %q (mysql-1's %s) not found in the file", c.from, c.what)
		}
		reloadWith(t, g, "mysql-1", "restart_needed", changed)
		waitLog(t, p1, c.says)
		pingAll(t, g, members)
	}
	if code, body := httpGet(t, adminURL(g, "mysql-1", "/readyz")); code != 200 {
		t.Fatalf("mysql-1's admin endpoint after refused reloads: %d %s", code, body)
	}
}

// movedPortTakesEffect: mysql-2 moves its link port. The others reload and
// dial the new port; mysql-2 itself needs the restart its reload asks for.
func movedPortTakesEffect(t *testing.T, g *localgroup.Group, procs map[string]*process, members []string) {
	ip := g.Member("mysql-2").IP
	yaml := g.ClusterYAML(localgroup.FileOptions{Members: members})
	old := fmt.Sprintf(`"%s:24900"`, ip)
	moved := strings.ReplaceAll(yaml, old, fmt.Sprintf(`"%s:24901"`, ip))
	for _, m := range members {
		result := "ok"
		if m == "mysql-2" {
			result = "restart_needed" // its own listen moves
		}
		reloadWith(t, g, m, result, moved)
	}
	if _, err := g.Ping(context.Background(), "mysql-1", "mysql-2", "group", "hi"); err == nil {
		t.Fatal("mysql-1 reached mysql-2 at its new port before mysql-2 moved")
	}
	stopProcess(t, procs["mysql-2"])
	procs["mysql-2"] = runFrom(t, g, "mysql-2")
	pingAll(t, g, members)
	waitLog(t, procs["mysql-1"], `"routes_changed":["mysql-2/group"]`)
}

// heldLink is a member connection kept open through the sidecars.
type heldLink struct{ c net.Conn }

// holdLink opens a link from's member to to's service and checks it.
func holdLink(t *testing.T, g *localgroup.Group, from, to string) *heldLink {
	t.Helper()
	c, err := dialMember(g, from, g.TunnelAddr(from, to, "group"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := echoLine(c, to, "held"); err != nil {
		t.Fatal(err)
	}
	return &heldLink{c: c}
}

// cut waits for the held link to be reset: an abort, never a clean end.
// The bound is generous: the cut follows the reload within milliseconds.
func (h *heldLink) cut() error {
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := h.c.Read(make([]byte, 1))
	switch {
	case err == nil:
		return errors.New("held link still carries bytes")
	case isTimeout(err):
		return errors.New("held link not cut")
	case !errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("held link ended with %v, want a reset", err)
	}
	return nil
}

// traffic opens short links between every ordered pair of members, each
// with one checked echo, until stopped; every failure is kept.
type traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	links    atomic.Int64
	mu       sync.Mutex
	failures []string
}

func startTraffic(g *localgroup.Group, members []string) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for _, from := range members {
		for _, to := range members {
			if from == to {
				continue
			}
			tr.wg.Go(func() { tr.run(g, from, to) })
		}
	}
	return tr
}

func (tr *traffic) run(g *localgroup.Group, from, to string) {
	for i := 0; ; i++ {
		select {
		case <-tr.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := g.Ping(context.Background(), from, to, "group", fmt.Sprint("m", i)); err != nil {
			tr.mu.Lock()
			tr.failures = append(tr.failures, fmt.Sprintf("%s %s → %s: %v", time.Now().Format("15:04:05.000"), from, to, err))
			tr.mu.Unlock()
			continue
		}
		tr.links.Add(1)
	}
}

// finish stops the traffic and fails the test on any failed link.
func (tr *traffic) finish(t *testing.T) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if len(tr.failures) > 0 {
		t.Errorf("%d of %d links failed, the first: %s", len(tr.failures), tr.links.Load()+int64(len(tr.failures)), strings.Join(tr.failures[:min(5, len(tr.failures))], "; "))
	}
	if tr.links.Load() == 0 {
		t.Error("no link carried traffic")
	}
	t.Logf("%d checked links", tr.links.Load())
}

// noneRefused fails the test if any member refused an inbound link or a
// dial was not accepted.
func noneRefused(t *testing.T, g *localgroup.Group, members []string) {
	t.Helper()
	for _, m := range members {
		url := adminURL(g, m, "/metrics")
		if n := metricSum(t, url, "groupwire_inbound_refused_total"); n != 0 {
			t.Errorf("%s refused %v inbound links", m, n)
		}
		if n := metricSum(t, url, `groupwire_links_total{channel="group",direction="out",outcome="not_accepted"`); n != 0 {
			t.Errorf("%s had %v links not accepted", m, n)
		}
	}
}

// TestRollingSSLModeMigration moves a running group from DISABLED to
// VERIFY_IDENTITY and back, one sidecar at a time, with links opened
// between every pair throughout: none fails and none is refused. Midway
// the peers still at the old mode show in /metrics and /status; when the
// old mode leaves accept_modes, a link still at it is cut.
func TestRollingSSLModeMigration(t *testing.T) {
	members := []string{"mysql-1", "mysql-2", "mysql-3"}
	g := reloadGroup(t, members, "DISABLED")
	procs := map[string]*process{}
	for _, m := range members {
		writeConfig(t, g, m, localgroup.FileOptions{Mode: "DISABLED"})
		procs[m] = runFrom(t, g, m)
	}
	held := holdLink(t, g, "mysql-2", "mysql-1") // a DISABLED link, kept open
	tr := startTraffic(g, members)
	both := []string{"DISABLED", "VERIFY_IDENTITY"}
	steps := []localgroup.FileOptions{
		{Mode: "DISABLED", AcceptModes: both},        // 1. accept both, still dial DISABLED
		{Mode: "VERIFY_IDENTITY", AcceptModes: both}, // 2. dial VERIFY_IDENTITY
	}
	for _, step := range steps {
		rollOut(t, g, members, step)
	}
	// Every dialer runs VERIFY_IDENTITY now; the held link is still at
	// DISABLED, and mysql-1 says so.
	waitMetricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_links_active{channel="group",direction="in",mode="DISABLED",peer="mysql-2"`, 1)
	if modes := linkModes(t, g, "mysql-1", "mysql-2"); !slices.Contains(modes, "DISABLED") {
		t.Errorf("/status shows mysql-2's links at %v, want DISABLED among them (the held link)", modes)
	}
	rollOut(t, g, members, localgroup.FileOptions{Mode: "VERIFY_IDENTITY"}) // 3. VERIFY_IDENTITY only
	if err := held.cut(); err != nil {
		t.Fatalf("the DISABLED link after DISABLED left accept_modes: %v", err)
	}
	waitLog(t, procs["mysql-1"], "its ssl_mode is no longer accepted")
	waitMetricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_links_cut_total{channel="group",reason="mode"}`, 1)
	if n := metricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_links_active{channel="group",direction="in",mode="DISABLED"`); n != 0 {
		t.Errorf("%v DISABLED links still live on mysql-1", n)
	}
	// And back.
	vi := []string{"VERIFY_IDENTITY", "DISABLED"}
	for _, step := range []localgroup.FileOptions{{Mode: "VERIFY_IDENTITY", AcceptModes: vi}, {Mode: "DISABLED", AcceptModes: vi}, {Mode: "DISABLED"}} {
		rollOut(t, g, members, step)
	}
	tr.finish(t)
	noneRefused(t, g, members)
}

// linkModes returns the link_modes member's /status gives the pair with
// peer.
func linkModes(t *testing.T, g *localgroup.Group, member, peer string) []string {
	t.Helper()
	_, body := httpGet(t, adminURL(g, member, "/status"))
	var st struct {
		Peers []struct {
			Peer      string   `json:"peer"`
			LinkModes []string `json:"link_modes"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	for _, p := range st.Peers {
		if p.Peer == peer {
			return p.LinkModes
		}
	}
	t.Fatalf("/status has no pair with %s:\n%s", peer, body)
	return nil
}

// rollOut applies fo to each member in turn, waiting for each reload, with
// a pause between members as an operator's rollout has.
func rollOut(t *testing.T, g *localgroup.Group, members []string, fo localgroup.FileOptions) {
	t.Helper()
	for _, m := range members {
		changeConfig(t, g, m, "ok", fo)
		time.Sleep(100 * time.Millisecond) // let links run at the mixed modes
	}
}

// TestCARotationWithoutDowntime rotates the group's CA with links flowing:
// trust both CAs, move every member to a certificate from the new one,
// drop the old CA. No link fails or is refused, and at the end a
// certificate from the old CA is refused.
func TestCARotationWithoutDowntime(t *testing.T) {
	members := []string{"mysql-1", "mysql-2", "mysql-3"}
	g := reloadGroup(t, members, "VERIFY_IDENTITY")
	for _, m := range members {
		writeConfig(t, g, m, localgroup.FileOptions{})
		runFrom(t, g, m)
	}
	oldDir := g.CAs["group"].Dir
	newDir := filepath.Join(g.Dir, "ca2")
	mustRun(t, "certs", "init", "--dir", newDir, "--members", strings.Join(members, ","), "--ca-name", "groupwire CA 2")
	bundle, crls := filepath.Join(g.Dir, "ca-bundle.pem"), filepath.Join(g.Dir, "crl-bundle.pem")
	mustRun(t, "certs", "bundle", "--out", bundle, "--crl-out", crls, oldDir, newDir)
	keepOld := copyFile(t, filepath.Join(oldDir, "mysql-2.pem"), filepath.Join(g.Dir, "old-mysql-2.pem"))
	keepOldKey := copyFile(t, filepath.Join(oldDir, "mysql-2-key.pem"), filepath.Join(g.Dir, "old-mysql-2-key.pem"))
	tr := startTraffic(g, members)

	rollOut(t, g, members, localgroup.FileOptions{CAFile: bundle, CRLFile: crls}) // 1. trust both
	for _, m := range members {                                                   // 2. new certificates
		reissue(t, g, m, newDir, oldDir)
	}
	// 3. the new CA alone, and its CRL
	rollOut(t, g, members, localgroup.FileOptions{CAFile: filepath.Join(newDir, "ca.pem"), CRLFile: filepath.Join(newDir, "crl.pem")})
	tr.finish(t)
	noneRefused(t, g, members)
	oldCertRefused(t, g, keepOld, keepOldKey)
}

// reissue puts member's certificate from the CA in newDir in place of its
// files in dir (key and certificate renamed over the old ones) and waits
// until the sidecar has reloaded it.
func reissue(t *testing.T, g *localgroup.Group, member, newDir, dir string) {
	t.Helper()
	url := adminURL(g, member, "/metrics")
	before := metricSum(t, url, `groupwire_cert_reloads_total{result="changed"`)
	for _, f := range []string{member + "-key.pem", member + ".pem"} {
		copyFile(t, filepath.Join(newDir, f), filepath.Join(dir, f+".tmp"))
		if err := os.Rename(filepath.Join(dir, f+".tmp"), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	waitMetricSum(t, url, `groupwire_cert_reloads_total{result="changed"`, before+1)
	want := certSerial(t, filepath.Join(newDir, member+".pem"))
	// The reload counted above swapped the snapshot /status reads; the
	// bound only covers a loaded machine.
	testutil.WaitFor(t, 5*time.Second, member+" presents its certificate from the new CA (serial "+want+")", func() bool {
		return statusSerial(t, g, member) == want
	})
}

// certSerial is the serial (hex, as /status prints it) of the first
// certificate in a PEM file.
func certSerial(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := certs.ParseCertificatesPEM(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return chain[0].SerialNumber.Text(16)
}

// statusSerial is the serial of the certificate member's /status says its
// first channel presents.
func statusSerial(t *testing.T, g *localgroup.Group, member string) string {
	t.Helper()
	_, body := httpGet(t, adminURL(g, member, "/status"))
	var st struct {
		Channels []struct {
			Certificate struct {
				Serial string `json:"serial"`
			} `json:"certificate"`
		} `json:"channels"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Channels) == 0 {
		t.Fatalf("/status of %s: %v\n%s", member, err, body)
	}
	return st.Channels[0].Certificate.Serial
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := runCmd(t, args...); err != nil {
		t.Fatalf("groupwire %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func copyFile(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

// oldCertRefused dials mysql-1's link listener with a certificate from the
// retired CA: the handshake must fail, and mysql-1 counts the refusal.
func oldCertRefused(t *testing.T, g *localgroup.Group, certFile, keyFile string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	url := adminURL(g, "mysql-1", "/metrics")
	before := metricSum(t, url, `groupwire_inbound_refused_total{reason="unknown authority"}`)
	addr := net.JoinHostPort(g.Member("mysql-1").IP, "24900")
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(g.Member("mysql-2").IP)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
		NextProtos: []string{"gw1/group"}, MinVersion: tls.VersionTLS13})
	if err == nil {
		// TLS 1.3: the server's verdict on the client certificate comes
		// with the first read.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("a certificate from the retired CA was not refused: %v", err)
	}
	waitMetricSum(t, url, `groupwire_inbound_refused_total{reason="unknown authority"}`, before+1)
}

// TestReloadCutsLinksThePolicyNoLongerAllows: a reload that changes a
// channel's TLS settings applies to new handshakes at once, and a live link
// that the new settings would not negotiate (here TLS 1.3, with the channel
// now limited to TLS 1.2) is cut; new links come up under the new policy.
func TestReloadCutsLinksThePolicyNoLongerAllows(t *testing.T) {
	members := []string{"mysql-1", "mysql-2"}
	g := reloadGroup(t, members, "VERIFY_IDENTITY")
	procs := map[string]*process{}
	for _, m := range members {
		writeConfig(t, g, m, localgroup.FileOptions{})
		procs[m] = runFrom(t, g, m)
	}
	held := holdLink(t, g, "mysql-1", "mysql-2")
	yaml := g.ClusterYAML(localgroup.FileOptions{})
	tls12 := strings.Replace(yaml, "tls:\n  ssl_mode: VERIFY_IDENTITY\n", "tls:\n  ssl_mode: VERIFY_IDENTITY\n  tls_version: TLSv1.2\n", 1)
	if tls12 == yaml {
		t.Fatal("test bug: the tls block was not found")
	}
	for _, m := range members {
		reloadWith(t, g, m, "ok", tls12)
	}
	if err := held.cut(); err != nil {
		t.Fatalf("the TLS 1.3 link after the channel was limited to TLS 1.2: %v", err)
	}
	waitLog(t, procs["mysql-1"], "its TLS version or cipher suite is no longer allowed")
	waitMetricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_links_cut_total{channel="group",reason="params"`, 1)
	pingAll(t, g, members)
	waitLog(t, procs["mysql-1"], `"channels_changed":["group"]`)
}

// TestReloadAppliesLimits: a new limit is in force for the next
// connection, and links already up are not touched.
func TestReloadAppliesLimits(t *testing.T) {
	members := []string{"mysql-1", "mysql-2"}
	g := reloadGroup(t, members, "VERIFY_IDENTITY")
	for _, m := range members {
		writeConfig(t, g, m, localgroup.FileOptions{})
		runFrom(t, g, m)
	}
	held := holdLink(t, g, "mysql-1", "mysql-2")
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{ExtraYAML: "reload_interval: 1h\nlimits: {max_links_per_peer: 1}\n"})
	if _, err := g.Ping(context.Background(), "mysql-1", "mysql-2", "group", "hi"); err == nil {
		t.Fatal("a second link to mysql-2 got through max_links_per_peer: 1")
	}
	waitMetricSum(t, adminURL(g, "mysql-1", "/metrics"), `groupwire_outbound_refused_total{reason="limit"`, 1)
	if err := echoLine(held.c, "mysql-2", "still here"); err != nil {
		t.Fatalf("the link that was up before the limit: %v", err)
	}
}

// TestReloadAppliesProbeInterval: a new probe_interval restarts every
// pair's probes at the new pace, and 0 stops them.
func TestReloadAppliesProbeInterval(t *testing.T) {
	members := []string{"mysql-1", "mysql-2"}
	g := reloadGroup(t, members, "VERIFY_IDENTITY")
	slow := localgroup.FileOptions{ExtraYAML: "reload_interval: 1h\nprobe_interval: 1h\n"}
	for _, m := range []string{"mysql-2", "mysql-1"} { // mysql-1's first probe finds mysql-2 up
		writeConfig(t, g, m, slow)
		runFrom(t, g, m)
	}
	url := adminURL(g, "mysql-1", "/metrics")
	probes := `groupwire_peer_probe_seconds_count{channel="group",peer="mysql-2"`
	waitMetricSum(t, url, probes, 1) // the first probe, at start
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{ExtraYAML: "reload_interval: 1h\nprobe_interval: 100ms\n"})
	// Under the old hour, no second probe would come in this test's life.
	waitMetricSum(t, url, probes, 5)
	changeConfig(t, g, "mysql-1", "ok", localgroup.FileOptions{ExtraYAML: "reload_interval: 1h\nprobe_interval: 0s\n"})
	stopped := metricSum(t, url, probes)
	// Were they still running at 100ms, a second would add about ten; at
	// most the one in flight when they stopped may land.
	time.Sleep(time.Second)
	if n := metricSum(t, url, probes); n > stopped+1 {
		t.Errorf("%v probes after probe_interval: 0 (were %v): probes did not stop", n, stopped)
	}
}
