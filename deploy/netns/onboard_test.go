package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/testutil"
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
	eg := &etcdGroup{t: t, top: newNetnsTopology(t, ipPath, append(three, "outsider")), dir: t.TempDir(), bin: testutil.Groupwire(t),
		etcd: etcd, etcdctl: etcdctl, sidecars: map[string]*netnsProc{}, etcds: map[string]*netnsProc{}}
	if out, err := runCmd(t, "certs", "init", "--dir", filepath.Join(eg.dir, "pki"), "--members", strings.Join(three, ",")); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
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
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, eg.top.ip, "netns", "exec", eg.top.host(member).NS, eg.bin, "status", "--admin", "127.0.0.1:9900", "-o", "json").Output()
		var st proxy.Status
		if err := json.Unmarshal(out, &st); err != nil {
			return false, fmt.Sprintf("status: %v: %s", err, out)
		}
		got, ok := map[string]string{}, len(st.Peers) == len(members)-1
		for _, p := range st.Peers {
			got[p.Peer] = p.Path
			ok = ok && p.Path == want(p.Peer)
		}
		return ok, fmt.Sprintf("paths %v", got)
	})
}
