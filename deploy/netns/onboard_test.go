package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/proxy"
)

// onboardingFile is the etcd group's drop-in cluster file with the
// onboarding window open (DISABLED accepted beside VERIFY_IDENTITY) or
// closed.
func onboardingFile(members []string, open bool) string {
	f := dropInFile("etcd-onboard", [][2]string{{"peer", dropInPeerPort}}, members,
		"dial_timeout: 1s\nhandshake_timeout: 3s\npeer_timeout: 4s\nprobe_interval: 1s\nreload_interval: 1h\nadmin: \"127.0.0.1:9900\"\n")
	if open {
		f = strings.Replace(f, "  ssl_mode: VERIFY_IDENTITY\n", "  ssl_mode: VERIFY_IDENTITY\n  accept_modes: [DISABLED, VERIFY_IDENTITY]\n", 1)
	}
	return f
}

// onboardingMaxOutage bounds the writer's longest stretch without an
// acknowledged write. Starting a sidecar cuts nothing; closing the window
// cuts the direct links and resets the connections made before the
// sidecars, and etcd re-dials its peers (every 100 ms) through them. A
// write waits for that only if the leader lost its quorum's streams: one
// election timeout (1 s) at most, and five of them leave room for a slow,
// shared CI machine.
const onboardingMaxOutage = 5 * time.Second

// TestEtcdOnboarding secures a running plaintext etcd cluster with no
// member restart, as README's "Securing a running group" says: three etcd
// members on their hosts' addresses and port 2380, no groupwire; a writer
// puts keys through e1 throughout. The sidecars start one at a time in
// drop-in mode with the onboarding window open (accept_modes: [DISABLED,
// VERIFY_IDENTITY]); between starts the pair tables show the mix of paths
// (through to peers with a sidecar, direct to those without), and a host
// outside the group still reaches no member's 2380. Then a reload on every
// sidecar closes the window: e1 reports the direct links it cut, every
// pair runs through the sidecars, and from then on the bridge carries not
// one packet on 2380. The etcd processes are the ones started first, every
// acknowledged write reads back from every member, and no write waited
// longer than onboardingMaxOutage.
func TestEtcdOnboarding(t *testing.T) {
	ipPath := netnsIPCommand(t)
	etcd, etcdctl := etcdBinaries(t)
	nft := nftCommand(t)
	t.Parallel()
	three := []string{"e1", "e2", "e3"}
	eg := newEtcdGroup(t, ipPath, etcd, etcdctl, append(three, "outsider"), three)
	wire := watchBridge(t, eg.top, nft, []string{dropInPeerPort}, "outsider")
	for _, m := range three {
		eg.startEtcdAsInstalled(m, three)
	}
	for _, m := range three {
		eg.readable(m)
	}
	eg.leadFrom("e1", three)
	etcds := map[string]*netnsProc{}
	for m, p := range eg.etcds {
		etcds[m] = p
	}
	w := startEtcdWriter(eg, "e1")
	w.progress(10, "in plaintext, before any sidecar")
	if c := wire.counts(); c["plain"] == 0 {
		t.Fatalf("the plaintext group sent nothing on port %s across the bridge: the watch would prove nothing", dropInPeerPort)
	}
	for i, m := range three {
		w.during(m + "'s sidecar starting")
		eg.writeConfig(m, onboardingFile(three, true))
		eg.startSidecar(m)
		w.progress(10, "after "+m+"'s sidecar started")
		for _, s := range three[:i+1] {
			eg.pathsAre(s, three, func(peer string) string {
				if slices.Index(three, peer) <= i {
					return proxy.PathThrough
				}
				return proxy.PathDirect
			})
		}
		if i == 0 {
			onboardingFirstSidecar(t, eg)
		}
	}
	dropInOutsiderRefused(t, eg, three)
	w.during("the window closing")
	for _, m := range three {
		eg.reconfigure(m, onboardingFile(three, false))
	}
	onboardingClosed(t, eg, w, wire, three)
	for m, p := range etcds {
		if eg.etcds[m] != p || !p.running() {
			t.Errorf("etcd %s is not the process started before the sidecars: %s", m, p.status())
		}
	}
	onboardingReadBack(t, eg, w, three)
}

// onboardingFirstSidecar checks the window with e1's sidecar alone: a new
// connection from e1's host to e2's 2380 goes to e2 directly (e2 has no
// sidecar) and is held open, to be cut when the window closes; e2's host,
// a member, still reaches e1's 2380 directly, and the outsider does not.
func onboardingFirstSidecar(t *testing.T, eg *etcdGroup) {
	t.Helper()
	e1, e2 := eg.top.host("e1").Addr, eg.top.host("e2").Addr
	held := startNetnsProc(t, eg.top.ip, eg.top.host("e1").NS, "held connection e1→e2", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%s && echo open && sleep 600", e2, dropInPeerPort))
	eg.all = append(eg.all, held)
	eg.waitFor(10*time.Second, "a new connection from e1's host to e2 goes directly", func() (bool, string) {
		return strings.Contains(held.out.String(), "open") && eg.logCount("e1", "onboarding window: the peer has no sidecar yet", `"peer":"e2"`) > 0,
			"not open, or e1's sidecar did not log its first direct link to e2"
	})
	if err := eg.shell("e2", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", e1, dropInPeerPort)); err != nil {
		t.Fatalf("during the window e2, a member with no sidecar, cannot reach e1's etcd at %s:%s: %v", e1, dropInPeerPort, err)
	}
	if err := eg.shell("outsider", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", e1, dropInPeerPort)); err == nil {
		t.Fatalf("during the window a host outside the group reached e1's etcd at %s:%s", e1, dropInPeerPort)
	}
}

// onboardingClosed checks the group once every sidecar closed the window:
// e1 cut the held direct link to e2 and says so; every pair runs through the sidecars; and, once the packets
// already in flight when the last rule went in have landed, the bridge
// carries nothing on port 2380 while the writer goes on.
func onboardingClosed(t *testing.T, eg *etcdGroup, w *etcdWriter, wire *bridgeWatch, members []string) {
	t.Helper()
	if n := eg.logCount("e1", `"message":"cluster file reloaded"`, `"direct_links_cut":1`); n != 1 {
		t.Errorf("e1 closed its window without logging the one direct link it cut (the held connection to e2):\n%s", eg.sidecars["e1"].out)
	}
	for _, m := range members {
		eg.pathsAre(m, members, func(string) string { return proxy.PathThrough })
		eg.linksRunAt(m, "VERIFY_IDENTITY")
	}
	w.progress(10, "after the window closed")
	time.Sleep(time.Second) // packets sent before the last reload may still be on the bridge
	base := wire.counts()
	w.during("the window closed")
	w.progress(20, "with the window closed")
	w.finish()
	if c := wire.counts(); c["plain"] != base["plain"] || c["link"] <= base["link"] {
		t.Fatalf("after the window closed the bridge carried %d packets on port %s (want none) and %d on the link port (want some)",
			c["plain"]-base["plain"], dropInPeerPort, c["link"]-base["link"])
	}
}

// onboardingReadBack reads every acknowledged write back from every
// member, and checks the writer's longest wait against the bound.
func onboardingReadBack(t *testing.T, eg *etcdGroup, w *etcdWriter, members []string) {
	t.Helper()
	if gap := w.longestGap(); gap > onboardingMaxOutage {
		t.Errorf("the writer went %v without an acknowledged write (bound %v); failures: %s", gap, onboardingMaxOutage, strings.Join(w.failures, "; "))
	}
	for _, m := range members {
		out, err := eg.ctl(m, "get", "k/", "--prefix", "--consistency=l")
		if err != nil {
			t.Fatalf("read back from %s: %v\n%s", m, err, out)
		}
		lines := strings.Split(out, "\n")
		got := map[string]string{}
		for i := 0; i+1 < len(lines); i += 2 {
			got[lines[i]] = lines[i+1]
		}
		for _, k := range w.order {
			if got[k] != w.acked[k] {
				t.Fatalf("%s: acknowledged write %s = %q reads back as %q", m, k, w.acked[k], got[k])
			}
		}
	}
	t.Logf("%d acknowledged writes (%d failed), all read back from every member; longest wait %v", len(w.order), len(w.failures), w.longestGap())
}

// pathsAre waits until member's pair table (groupwire status -o json, in
// its host) shows, for every peer, the path want names.
func (eg *etcdGroup) pathsAre(member string, members []string, want func(peer string) string) {
	eg.t.Helper()
	eg.waitFor(15*time.Second, member+"'s pair table shows the expected paths", func() (bool, string) {
		st, err := eg.status(member)
		if err != nil {
			return false, err.Error()
		}
		got, ok := map[string]string{}, len(st.Peers) == len(members)-1
		for _, p := range st.Peers {
			got[p.Peer] = p.Path
			ok = ok && p.Path == want(p.Peer)
		}
		return ok, fmt.Sprintf("paths %v", got)
	})
}

// TestGaleraOnboarding runs the same procedure on a running MariaDB Galera
// cluster under a steady write load: three nodes configured as a plain
// install (TestGaleraDropIn's configuration), formed in plaintext with no
// groupwire; a writer inserts rows through g1 throughout. The sidecars
// start one at a time with the window open on every channel, then a reload
// on each closes it. The cluster's configuration never changes
// (wsrep_cluster_conf_id stays as it was, so wsrep_cluster_size never left
// 3), the mariadbd processes are the ones started first, no node logs a
// state transfer, every acknowledged row is on every node, and once the
// window is closed the bridge carries nothing on Galera's ports.
func TestGaleraOnboarding(t *testing.T) {
	nodes := []string{"g1", "g2", "g3"}
	g, wire := watchedMariaGroup(t, nodes, galeraWire)
	g.formPlaintext(nodes)
	confID := g.sql("g1", "SHOW STATUS LIKE 'wsrep_cluster_conf_id'")
	servers, logLen := map[string]*netnsProc{}, map[string]int{}
	for _, n := range nodes {
		servers[n], logLen[n] = g.nodes[n], len(g.errorLog(n))
	}
	w := startGaleraWriter(g, "g1")
	open := strings.Replace(galeraClusterFile(nodes), "  ssl_mode: VERIFY_IDENTITY\n", "  ssl_mode: VERIFY_IDENTITY\n  accept_modes: [DISABLED, VERIFY_IDENTITY]\n", 1)
	sidecars := map[string]*netnsProc{}
	for _, n := range nodes {
		w.progress(20, "before "+n+"'s sidecar")
		sidecars[n] = g.startSidecarWith(n, open)
	}
	w.progress(20, "with every sidecar, the window open")
	for _, n := range nodes {
		g.reloadSidecar(n, sidecars[n], galeraClusterFile(nodes))
	}
	w.progress(20, "after the window closed")
	time.Sleep(time.Second) // packets sent before the last reload may still be on the bridge
	base := wire.counts()
	w.progress(30, "with the window closed")
	w.finish()
	if c := wire.counts(); c["plain"] != base["plain"] || c["link"] <= base["link"] {
		t.Errorf("after the window closed the bridge carried %d packets on Galera's ports (want none) and %d on the link port (want some)", c["plain"]-base["plain"], c["link"]-base["link"])
	}
	for _, n := range nodes {
		if got := g.sql(n, "SHOW STATUS LIKE 'wsrep_cluster_conf_id'"); got != confID {
			t.Errorf("%s: %s, was %s before the sidecars: the cluster's membership changed", n, got, confID)
		}
		if g.nodes[n] != servers[n] || !servers[n].running() {
			t.Errorf("mariadbd %s is not the process started before the sidecars: %s", n, servers[n].status())
		}
		if log := g.errorLog(n)[logLen[n]:]; strings.Contains(log, "State transfer required") || strings.Contains(log, "IST received") {
			t.Errorf("%s needed a state transfer during the onboarding:\n%s", n, tail(log, 30))
		}
		g.waitFor(30*time.Second, n+" has every acknowledged row", func() (bool, string) {
			out, err := g.query(n, "SELECT COUNT(*) FROM gw.w WHERE id <= "+strconv.Itoa(w.last()))
			return err == nil && out == strconv.Itoa(w.count()), fmt.Sprintf("%s of %d (%v)", out, w.count(), err)
		})
	}
	t.Logf("%d rows acknowledged (%d failed), on every node; cluster configuration %s throughout", w.count(), len(w.failures), confID)
}

// formPlaintext forms the Galera cluster with no sidecar: g1 bootstraps,
// the others join (rsync SST), in plaintext, as a running group does.
func (g *mariaGroup) formPlaintext(nodes []string) {
	g.t.Helper()
	for _, n := range nodes {
		g.initNode(n, g.myCnf(n, nodes))
	}
	g.start("g1", "--wsrep-new-cluster")
	g.waitStatus("g1", "wsrep_ready", "ON")
	g.sql("g1", "CREATE DATABASE gw; CREATE TABLE gw.w (id INT PRIMARY KEY, at BIGINT)")
	for _, n := range nodes[1:] {
		g.start(n)
	}
	for _, n := range nodes {
		g.waitStatus(n, "wsrep_cluster_size", "3")
		g.waitStatus(n, "wsrep_local_state_comment", "Synced")
	}
}

// reloadSidecar writes node's cluster file anew and waits until its
// sidecar has applied it.
func (g *mariaGroup) reloadSidecar(node string, p *netnsProc, content string) {
	g.t.Helper()
	before := strings.Count(p.out.String(), `"message":"cluster file reloaded"`)
	if err := os.WriteFile(filepath.Join(g.dir, node+".yaml"), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
	g.waitFor(15*time.Second, node+"'s sidecar reloads its cluster file", func() (bool, string) {
		return strings.Count(p.out.String(), `"message":"cluster file reloaded"`) > before, "no reload logged yet"
	})
}

// galeraWriter inserts rows with consecutive ids through one node, one at
// a time, and keeps count of the acknowledged ones: every id up to last()
// that was acknowledged must be on every node.
type galeraWriter struct {
	g          *mariaGroup
	node       string
	stop, done chan struct{}

	mu       sync.Mutex
	acked    []int
	failures []string
}

func startGaleraWriter(g *mariaGroup, node string) *galeraWriter {
	w := &galeraWriter{g: g, node: node, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for id := 1; ; id++ {
			select {
			case <-w.stop:
				return
			default:
			}
			_, err := g.query(node, fmt.Sprintf("INSERT INTO gw.w VALUES (%d, %d)", id, time.Now().UnixNano()))
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, id)
			} else {
				w.failures = append(w.failures, fmt.Sprintf("row %d: %v", id, err))
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// count is how many rows were acknowledged; last the highest id tried.
func (w *galeraWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *galeraWriter) last() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acked) == 0 {
		return 0
	}
	return w.acked[len(w.acked)-1]
}

// progress waits until n more rows are acknowledged.
func (w *galeraWriter) progress(n int, during string) {
	w.g.t.Helper()
	want := w.count() + n
	w.g.waitFor(60*time.Second, fmt.Sprintf("%d rows acknowledged %s", n, during), func() (bool, string) {
		return w.count() >= want, fmt.Sprintf("%d of %d; failures: %v", w.count(), want, w.failures)
	})
}

func (w *galeraWriter) finish() {
	close(w.stop)
	<-w.done
}
