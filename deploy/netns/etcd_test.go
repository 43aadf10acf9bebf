//go:build linux

package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/groupwire/groupwire/proxy"
)

// etcdPeerPort is member eN's etcd peer port, 2380+N: the port-per-member
// scheme, so that on every host 127.0.0.1:238N is either eN itself or the
// sidecar's listener that tunnels to it.
func etcdPeerPort(member string) string { return "238" + strings.TrimPrefix(member, "e") }

// etcdClusterFile is the cluster file of an etcd group behind sidecars:
// members as named, every channel's ssl_mode mode, accept_modes accept.
func etcdClusterFile(members []string, mode string, accept []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "group: etcd-test\ntls:\n  ssl_mode: %s\n", mode)
	if len(accept) > 0 {
		fmt.Fprintf(&b, "  accept_modes: [%s]\n", strings.Join(accept, ", "))
	}
	b.WriteString("  ssl_ca: pki/ca.pem\n  ssl_cert: pki/${GROUPWIRE_MEMBER}.pem\n  ssl_key: pki/${GROUPWIRE_MEMBER}-key.pem\n  ssl_crl: pki/crl.pem\n")
	b.WriteString("channels:\n  peer: {}\nmembers:\n")
	for _, m := range members {
		fmt.Fprintf(&b, "  %s: {address: \"%s:24900\", ports: {peer: %s}}\n", m, m, etcdPeerPort(m))
	}
	b.WriteString("dial_timeout: 1s\nhandshake_timeout: 3s\npeer_timeout: 4s\nprobe_interval: 1s\nreload_interval: 1h\nadmin: \"127.0.0.1:9900\"\n")
	return b.String()
}

// etcdGroup is etcd members and their sidecars, one per host.
type etcdGroup struct {
	t        *testing.T
	top      *netnsTopology
	dir      string
	bin      string // groupwire
	etcd     string
	etcdctl  string
	sidecars map[string]*netnsProc // the current process of each
	etcds    map[string]*netnsProc
	all      []*netnsProc // every process started, for failure output
}

// newEtcdGroup makes the topology of hosts and a development PKI for
// members in the group's folder (pki/). The caller has found the programs
// (netnsIPCommand, etcdBinaries) before it went parallel.
func newEtcdGroup(t *testing.T, ipPath, etcd, etcdctl string, hosts, members []string) *etcdGroup {
	t.Helper()
	eg := &etcdGroup{t: t, top: newNetnsTopology(t, ipPath, hosts), dir: t.TempDir(), bin: testutil.Groupwire(t),
		etcd: etcd, etcdctl: etcdctl, sidecars: map[string]*netnsProc{}, etcds: map[string]*netnsProc{}}
	devPKI(t, eg.dir, members)
	return eg
}

// devPKI issues a development CA and members' certificates in dir/pki.
func devPKI(t *testing.T, dir string, members []string) {
	t.Helper()
	if out, err := runCmd(t, "certs", "init", "--dir", filepath.Join(dir, "pki"), "--members", strings.Join(members, ",")); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
}

// etcdBinaries returns the paths of etcd and etcdctl, installing Debian's
// etcd-server and etcd-client when they are missing. When they cannot be
// had the test is skipped, or fails under GROUPWIRE_NETNS=1.
func etcdBinaries(t *testing.T) (string, string) {
	t.Helper()
	find := func() (string, string, bool) {
		e, err1 := exec.LookPath("etcd")
		c, err2 := exec.LookPath("etcdctl")
		return e, c, err1 == nil && err2 == nil
	}
	if e, c, ok := find(); ok {
		return e, c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "etcd-server", "etcd-client")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if e, c, ok := find(); ok {
		return e, c
	}
	netnsUnavailable(t, fmt.Sprintf("the etcd test needs etcd and etcdctl (Debian etcd-server, etcd-client); apt-get install: %v %s", err, out))
	return "", ""
}

// writeConfig writes member's cluster file by renaming over it, as a
// deployment tool would.
func (eg *etcdGroup) writeConfig(member, content string) {
	eg.t.Helper()
	if err := devpki.WriteFile(filepath.Join(eg.dir, member+".yaml"), []byte(content), 0o644); err != nil {
		eg.t.Fatal(err)
	}
}

// startSidecar runs member's sidecar on its own cluster file.
func (eg *etcdGroup) startSidecar(member string) {
	eg.t.Helper()
	p := startNetnsProc(eg.t, eg.top.ip, eg.top.host(member).NS, fmt.Sprintf("sidecar %s (process %d)", member, len(eg.all)+1), eg.bin,
		"run", "--config", filepath.Join(eg.dir, member+".yaml"), "--member", member, "--log-format", "json")
	eg.sidecars[member], eg.all = p, append(eg.all, p)
}

// startEtcd runs member's etcd: peers on 127.0.0.1:238N, clients on
// 127.0.0.1:2379, in its own namespace. cluster lists the initial members.
func (eg *etcdGroup) startEtcd(member string, cluster []string, state string) {
	eg.t.Helper()
	var initial []string
	for _, m := range cluster {
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%s", m, etcdPeerPort(m)))
	}
	peer := "http://127.0.0.1:" + etcdPeerPort(member)
	p := startNetnsProc(eg.t, eg.top.ip, eg.top.host(member).NS, "etcd "+member, eg.etcd,
		"--name", member, "--data-dir", filepath.Join(eg.dir, member+".etcd"),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", state, "--initial-cluster-token", "gw-etcd-test",
		"--pre-vote=true", "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap", "--log-level", "warn")
	eg.etcds[member], eg.all = p, append(eg.all, p)
}

// ctl runs etcdctl against member's etcd, from inside its host.
func (eg *etcdGroup) ctl(member string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	full := append([]string{"netns", "exec", eg.top.host(member).NS, eg.etcdctl, "--endpoints=http://127.0.0.1:2379", "--command-timeout=5s"}, args...)
	out, err := exec.CommandContext(ctx, eg.top.ip, full...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// shell runs a bash command inside member's host.
func (eg *etcdGroup) shell(member, script string) error {
	_, err := eg.top.shell(member, script)
	return err
}

// shellOut runs a bash command inside member's host and returns its
// output, trimmed.
func (eg *etcdGroup) shellOut(member, script string) (string, error) {
	return eg.top.shell(member, script)
}

// waitFor polls cond until it holds, failing the test after limit with
// its last explanation and every process's output.
func (eg *etcdGroup) waitFor(limit time.Duration, what string, cond func() (bool, string)) {
	eg.t.Helper()
	netnsWaitUntil(eg.t, limit, what, cond, eg.dump)
}

// leadFrom makes member the leader, as an operator does before work that
// cuts links: a proposal a follower forwards to the leader is lost if the
// link carrying it is cut, and raft does not send it again (the client
// times out), while the leader's own appends are retransmitted.
func (eg *etcdGroup) leadFrom(member string, members []string) {
	eg.t.Helper()
	id := etcdMemberID(eg.t, eg, member)
	eg.waitFor(30*time.Second, member+" leads", func() (bool, string) {
		leader, why := eg.leader(members)
		switch {
		case leader == "":
			return false, why
		case leader == member:
			return true, ""
		}
		out, err := eg.ctl(leader, "move-leader", id)
		return false, fmt.Sprintf("moving leadership from %s: %v %s", leader, err, lastLine(out))
	})
}

// leader returns which of members leads, from their own status.
func (eg *etcdGroup) leader(members []string) (string, string) {
	for _, m := range members {
		out, err := eg.ctl(m, "endpoint", "status", "-w", "json")
		if err != nil {
			continue
		}
		var st []struct {
			Status struct {
				Header struct {
					MemberID uint64 `json:"member_id"`
				} `json:"header"`
				Leader uint64 `json:"leader"`
			} `json:"Status"`
		}
		if json.Unmarshal([]byte(out), &st) == nil && len(st) == 1 && st[0].Status.Leader != 0 && st[0].Status.Leader == st[0].Status.Header.MemberID {
			return m, ""
		}
	}
	return "", "no member says it leads"
}

// readable waits until member serves a linearizable read, which needs the
// leader, so its links through the sidecars.
func (eg *etcdGroup) readable(member string) {
	eg.t.Helper()
	eg.waitFor(30*time.Second, member+" serves linearizable reads", func() (bool, string) {
		out, err := eg.ctl(member, "get", "probe", "--consistency=l")
		return err == nil, fmt.Sprint(err, " ", out)
	})
}

// logCount counts the lines of member's sidecar output holding every part.
func (eg *etcdGroup) logCount(member string, parts ...string) int {
	return len(linesWithAll(strings.Split(eg.sidecars[member].out.String(), "\n"), parts...))
}

// reconfigure writes content as member's cluster file and waits until the
// sidecar has applied it.
func (eg *etcdGroup) reconfigure(member, content string) {
	eg.t.Helper()
	before := eg.logCount(member, `"message":"cluster file reloaded"`)
	eg.writeConfig(member, content)
	eg.waitFor(10*time.Second, member+"'s sidecar reloads its cluster file", func() (bool, string) {
		if n := eg.logCount(member, "cluster file reload refused"); n > 0 {
			eg.t.Fatalf("%s refused its new cluster file:\n%s", member, eg.sidecars[member].out)
		}
		return eg.logCount(member, `"message":"cluster file reloaded"`) > before, "no reload logged yet"
	})
}

// linksRunAt waits until member's sidecar has live links (etcd keeps its
// peer streams open) and every one runs mode: once the window closes, a
// link still at the other mode is cut and etcd reconnects at this one. It
// reads `groupwire status -o json` inside the member's host.
func (eg *etcdGroup) linksRunAt(member, mode string) {
	eg.t.Helper()
	eg.waitFor(15*time.Second, member+"'s links all run "+mode, func() (bool, string) {
		st, err := eg.status(member)
		if err != nil {
			return false, err.Error()
		}
		modes := map[string]int{}
		for _, l := range st.Links {
			modes[l.Mode]++
		}
		return len(st.Links) > 0 && modes[mode] == len(st.Links), fmt.Sprintf("links by mode: %v", modes)
	})
}

// status is member's sidecar status, from `groupwire status -o json` run
// inside its host.
func (eg *etcdGroup) status(member string) (proxy.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, eg.top.ip, "netns", "exec", eg.top.host(member).NS, eg.bin, "status", "--admin", "127.0.0.1:9900", "-o", "json").Output()
	var st proxy.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("status: %v: %s", err, out)
	}
	return st, nil
}

// keepLogs writes every process's whole output into the folder named by
// GROUPWIRE_KEEP_LOGS, when set, for a failure that the tails in the test
// output do not explain.
func (eg *etcdGroup) keepLogs() {
	dir := os.Getenv("GROUPWIRE_KEEP_LOGS")
	if dir == "" {
		return
	}
	for _, p := range eg.all {
		name := filepath.Join(dir, strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(p.label)+".log")
		if err := os.WriteFile(name, []byte(p.out.String()), 0o644); err != nil {
			eg.t.Logf("keep logs: %v", err)
		}
	}
	eg.t.Logf("every process's output is in %s", dir)
}

func (eg *etcdGroup) dump() string { return netnsDump(eg.all) }

// etcdWriter puts a fresh key through one member for as long as it runs,
// one write at a time, and keeps every acknowledged write and every
// failure.
type etcdWriter struct {
	eg     *etcdGroup
	member string
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	phase    string // what the test is doing, for failure messages
	acked    map[string]string
	order    []string
	failures []string
	lastAck  time.Time     // when the last write was acknowledged
	longest  time.Duration // the longest time between two acknowledged writes
}

func startEtcdWriter(eg *etcdGroup, member string) *etcdWriter {
	w := &etcdWriter{eg: eg, member: member, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]string{}}
	go w.run()
	return w
}

func (w *etcdWriter) run() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		key, val := fmt.Sprintf("k/%06d", i), fmt.Sprintf("v%d-%d", i, time.Now().UnixNano())
		out, err := w.eg.ctl(w.member, "put", key, val)
		w.mu.Lock()
		if err == nil && out == "OK" {
			w.acked[key] = val
			w.order = append(w.order, key)
			if now := time.Now(); !w.lastAck.IsZero() {
				w.longest = max(w.longest, now.Sub(w.lastAck))
			}
			w.lastAck = time.Now()
		} else {
			w.failures = append(w.failures, fmt.Sprintf("%s %s during %s: %v %s", time.Now().Format("15:04:05.000"), key, w.phase, err, lastLine(out)))
		}
		w.mu.Unlock()
	}
}

// lastLine is the last line of s.
func lastLine(s string) string { return s[strings.LastIndex(s, "\n")+1:] }

// during names what the test does next, for the failures it may cause.
func (w *etcdWriter) during(phase string) {
	w.mu.Lock()
	w.phase = phase
	w.mu.Unlock()
}

// count returns how many writes were acknowledged so far.
func (w *etcdWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.order)
}

// longestGap is the longest time between two acknowledged writes.
func (w *etcdWriter) longestGap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.longest
}

// progress waits until n more writes are acknowledged.
func (w *etcdWriter) progress(n int, during string) {
	w.eg.t.Helper()
	want := w.count() + n
	w.eg.waitFor(30*time.Second, fmt.Sprintf("%d writes acknowledged %s", n, during), func() (bool, string) {
		return w.count() >= want, fmt.Sprintf("%d of %d", w.count(), want)
	})
}

func (w *etcdWriter) finish() {
	close(w.stop)
	<-w.done
}

// TestEtcdThroughSidecars runs a real three-member etcd cluster whose peer
// traffic crosses only the sidecars: each member and its sidecar in a
// namespace of their own, etcd on 127.0.0.1 with a peer port per member,
// no route from one host to another's etcd ports. A writer puts keys
// through e1 throughout, while the cluster forms, e2's sidecar is killed
// and brought back, every certificate is rotated, the group migrates from
// VERIFY_IDENTITY to DISABLED and back one sidecar at a time, a fourth
// member is added through cluster-file reloads and removed again, and e3's
// certificate is revoked, which cuts it off while e1 and e2 keep serving.
// No write may fail, and every acknowledged write is read back.
func TestEtcdThroughSidecars(t *testing.T) {
	ipPath := netnsIPCommand(t)
	etcd, etcdctl := etcdBinaries(t)
	t.Parallel()
	all := []string{"e1", "e2", "e3", "e4"}
	three := all[:3]
	eg := newEtcdGroup(t, ipPath, etcd, etcdctl, all, all)
	for _, m := range three {
		eg.writeConfig(m, etcdClusterFile(three, "VERIFY_IDENTITY", nil))
		eg.startSidecar(m)
		eg.startEtcd(m, three, "new")
	}
	for _, m := range three { // 1. the cluster forms
		eg.readable(m)
	}
	etcdNoDirectRoute(t, eg)
	eg.leadFrom("e1", three)
	w := startEtcdWriter(eg, "e1")
	w.during("formation")
	w.progress(10, "once formed")

	w.during("e2's sidecar killed and restarted") // 2.
	eg.sidecars["e2"].stop()
	w.progress(10, "with e2's sidecar down")
	eg.startSidecar("e2")
	eg.readable("e2")
	eg.leadFrom("e1", three)

	w.during("the certificate rotation") // 3.
	etcdRotateCertificates(t, eg, all)
	w.progress(10, "after the rotation")
	etcdRollingMigration(t, eg, w, three) // 4.
	w.during("e4's addition and removal") // 5.
	etcdAddAndRemove(t, eg, w, all)
	eg.leadFrom("e1", three)
	beforeRevoke := w.count()
	w.during("e3's revocation") // 6.
	etcdRevoke(t, eg, w)
	w.finish()
	etcdReadBack(t, eg, w, beforeRevoke)
}

// etcdNoDirectRoute: from e1's host, e2's etcd peer port answers only
// through the sidecar on 127.0.0.1, never at e2's own address.
func etcdNoDirectRoute(t *testing.T, eg *etcdGroup) {
	t.Helper()
	e2 := eg.top.host("e2").Addr
	if err := eg.shell("e1", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", e2, etcdPeerPort("e2"))); err == nil {
		t.Fatalf("e1 reached e2's etcd at %s:%s directly: the test would not prove the sidecars carry the traffic", e2, etcdPeerPort("e2"))
	}
	if err := eg.shell("e1", "exec 3<>/dev/tcp/127.0.0.1/"+etcdPeerPort("e2")); err != nil {
		t.Fatalf("e1 cannot reach e2's etcd through its sidecar at 127.0.0.1:%s: %v", etcdPeerPort("e2"), err)
	}
}

// etcdRotateCertificates re-issues every member's certificate in place and
// waits until every running sidecar has loaded its new one.
func etcdRotateCertificates(t *testing.T, eg *etcdGroup, all []string) {
	t.Helper()
	before := map[string]int{}
	for m := range eg.sidecars {
		before[m] = eg.logCount(m, "certificates reloaded")
	}
	for _, m := range all {
		if out, err := runCmd(t, "certs", "issue", "--dir", filepath.Join(eg.dir, "pki"), m, "--force"); err != nil {
			t.Fatalf("certs issue %s: %v\n%s", m, err, out)
		}
	}
	for m := range eg.sidecars {
		eg.waitFor(10*time.Second, m+"'s sidecar loads its new certificate", func() (bool, string) {
			return eg.logCount(m, "certificates reloaded") > before[m], "no reload logged yet"
		})
	}
}

// etcdRollingMigration moves the group from VERIFY_IDENTITY to DISABLED
// and back, one sidecar at a time, writes flowing between the steps.
func etcdRollingMigration(t *testing.T, eg *etcdGroup, w *etcdWriter, members []string) {
	t.Helper()
	toD, toV := []string{"VERIFY_IDENTITY", "DISABLED"}, []string{"DISABLED", "VERIFY_IDENTITY"}
	steps := []struct {
		mode   string
		accept []string
	}{
		{"VERIFY_IDENTITY", toD}, {"DISABLED", toD}, {"DISABLED", nil},
		{"DISABLED", toV}, {"VERIFY_IDENTITY", toV}, {"VERIFY_IDENTITY", nil},
	}
	for i, s := range steps {
		w.during(fmt.Sprintf("migration step %d (%s, accept %v)", i+1, s.mode, s.accept))
		for _, m := range members {
			eg.reconfigure(m, etcdClusterFile(members, s.mode, s.accept))
		}
		w.progress(5, fmt.Sprintf("after migration step %d (%s, accept %v)", i+1, s.mode, s.accept))
		if s.accept == nil {
			for _, m := range members {
				eg.linksRunAt(m, s.mode)
			}
		}
	}
	for _, m := range members {
		eg.readable(m)
	}
	eg.leadFrom("e1", members)
}

// etcdAddAndRemove adds e4 (sidecars first, through their cluster files,
// then etcd's member add) and removes it again.
func etcdAddAndRemove(t *testing.T, eg *etcdGroup, w *etcdWriter, all []string) {
	t.Helper()
	three := all[:3]
	for _, m := range three {
		eg.reconfigure(m, etcdClusterFile(all, "VERIFY_IDENTITY", nil))
	}
	eg.writeConfig("e4", etcdClusterFile(all, "VERIFY_IDENTITY", nil))
	eg.startSidecar("e4")
	// etcd refuses a member add until every member has been connected for
	// 5 s (its strict reconfiguration check), so the last migration step's
	// reconnections may make it wait.
	eg.waitFor(30*time.Second, "etcd adds member e4", func() (bool, string) {
		out, err := eg.ctl("e1", "member", "add", "e4", "--peer-urls=http://127.0.0.1:"+etcdPeerPort("e4"))
		return err == nil, fmt.Sprint(err, " ", lastLine(out))
	})
	eg.startEtcd("e4", all, "existing")
	eg.readable("e4")
	w.progress(5, "with e4 in the cluster")

	id := etcdMemberID(t, eg, "e4")
	eg.waitFor(30*time.Second, "etcd removes member e4", func() (bool, string) {
		out, err := eg.ctl("e1", "member", "remove", id)
		return err == nil, fmt.Sprint(err, " ", lastLine(out))
	})
	for _, m := range three {
		eg.reconfigure(m, etcdClusterFile(three, "VERIFY_IDENTITY", nil))
	}
	eg.etcds["e4"].stop()
	eg.sidecars["e4"].stop()
	w.progress(5, "after e4 left")
}

// etcdMemberID returns the hex id of the named member from e1's list.
func etcdMemberID(t *testing.T, eg *etcdGroup, name string) string {
	t.Helper()
	out, err := eg.ctl("e1", "member", "list")
	if err != nil {
		t.Fatalf("member list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ", ")
		if len(f) > 2 && f[2] == name {
			return f[0]
		}
	}
	t.Fatalf("member list has no %s:\n%s", name, out)
	return ""
}

// etcdRevoke revokes e3's certificate: e1's and e2's sidecars cut its
// links within seconds, and writes go on through e1 and e2 alone.
func etcdRevoke(t *testing.T, eg *etcdGroup, w *etcdWriter) {
	t.Helper()
	if out, err := runCmd(t, "certs", "revoke", "--dir", filepath.Join(eg.dir, "pki"), "e3"); err != nil {
		t.Fatalf("certs revoke e3: %v\n%s", err, out)
	}
	// The CRL reload and the cut take milliseconds; 10 s covers a loaded
	// machine, while a sidecar that never cut would wait forever.
	for _, m := range []string{"e1", "e2"} {
		eg.waitFor(10*time.Second, m+" cuts e3 off", func() (bool, string) {
			return eg.logCount(m, "peer no longer trusted", `"peer":"e3"`) > 0, "no cut logged yet"
		})
	}
	w.progress(10, "with e3 revoked")
	if out, err := eg.ctl("e3", "get", "probe", "--consistency=l"); err == nil {
		t.Errorf("e3 still serves linearizable reads after its revocation: %s", out)
	}
}

// etcdReadBack reads every acknowledged write back: from e1 and e2 all of
// them, from e3 (cut off, serializable reads of what it has) those written
// before its revocation.
func etcdReadBack(t *testing.T, eg *etcdGroup, w *etcdWriter, beforeRevoke int) {
	t.Helper()
	if len(w.failures) > 0 {
		t.Errorf("%d of %d writes failed; the first: %s", len(w.failures), len(w.order)+len(w.failures), strings.Join(w.failures[:min(3, len(w.failures))], "; "))
		eg.keepLogs()
	}
	for _, c := range []struct {
		member, consistency string
		keys                []string
	}{{"e1", "l", w.order}, {"e2", "l", w.order}, {"e3", "s", w.order[:beforeRevoke]}} {
		out, err := eg.ctl(c.member, "get", "k/", "--prefix", "--consistency="+c.consistency)
		if err != nil {
			t.Fatalf("read back from %s: %v\n%s", c.member, err, out)
		}
		got := map[string]string{}
		lines := strings.Split(out, "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			got[lines[i]] = lines[i+1]
		}
		for _, k := range c.keys {
			if got[k] != w.acked[k] {
				t.Errorf("%s: acknowledged write %s = %q reads back as %q", c.member, k, w.acked[k], got[k])
				break
			}
		}
	}
	t.Logf("%d acknowledged writes, all read back", len(w.order))
}
