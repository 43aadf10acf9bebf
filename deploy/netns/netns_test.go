//go:build linux

package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/testutil"
)

// netnsCluster is the one cluster file every host mounts: the members are
// reached by DNS name (each host's /etc/hosts), and on every host the
// member and its sidecar share 127.0.0.1 with the same port per member.
// A short dial_timeout makes a partition show within one ping timeout, and
// a short peer_timeout lets the sidecars cut live links to a partitioned
// peer within seconds.
const netnsCluster = `group: netns-test
tls:
  ssl_mode: VERIFY_IDENTITY
  ssl_ca: pki/ca.pem
  ssl_cert: pki/${GROUPWIRE_MEMBER}.pem
  ssl_key: pki/${GROUPWIRE_MEMBER}-key.pem
  ssl_crl: pki/crl.pem
channels:
  group: {}
  recovery: {}
members:
  m1: {address: "m1:24900", ports: {group: 33061, recovery: 3306}}
  m2: {address: "m2:24900", ports: {group: 33062, recovery: 3307}}
  m3: {address: "m3:24900", ports: {group: 33063, recovery: 3308}}
admin: "127.0.0.1:9900"
dial_timeout: 1s
handshake_timeout: 3s
peer_timeout: 4s
`

// TestNetns runs a group the way it is deployed: one host per member, each
// its own network namespace with its own loopback, where member and
// sidecar both use 127.0.0.1 and the same port-per-member routing. The
// hosts share a bridge and find each other by name through their hosts
// files. It checks that every pair talks, that a member moved to a new
// address is found again without restarting the others, that a partition
// cuts off exactly one host and heals, and that revoking a member's
// certificate cuts it off from every host within about two seconds.
func TestNetns(t *testing.T) {
	ipPath := netnsIPCommand(t)
	t.Parallel()
	members := []string{"m1", "m2", "m3"}
	top := newNetnsTopology(t, ipPath, members)
	bin := testutil.Groupwire(t)

	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if out, err := runCmd(t, "certs", "init", "--dir", pki, "--members", strings.Join(members, ",")); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
	config := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(config, []byte(netnsCluster), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "check", "--config", config); err != nil {
		t.Fatalf("check %s: %v\n%s", config, err, out)
	}

	g := newNetnsGroup(t, top, bin, config, 200*time.Millisecond)
	start := time.Now()
	for _, m := range members {
		g.start(m)
	}
	netnsEveryPairTalks(t, g, members)
	t.Logf("every pair talks %v after start", time.Since(start).Round(time.Millisecond))

	netnsMoveMember(t, g, top)
	netnsPartition(t, g)
	netnsRevoke(t, g, pki)
	t.Logf("whole scenario: %v", time.Since(start).Round(time.Millisecond))
}

// netnsEveryPairTalks waits for an ok ping on each of the six ordered
// pairs: every member reaches both others through the sidecars.
func netnsEveryPairTalks(t *testing.T, g *netnsGroup, members []string) {
	from := g.mark()
	all := netnsPairs(members...)
	g.waitUntil(20*time.Second, "every member reaches both others through 127.0.0.1", func() (bool, string) {
		tl := netnsTallyPings(g.pings(from))
		miss := netnsLacking(all, func(p netnsPair) bool { return tl.ok[p] > 0 })
		return miss == "", "no ok ping yet on " + miss
	})
}

// netnsMoveMember stops m2, moves its host to a new address, updates every
// hosts file and starts m2 again: m1 and m3, whose sidecars keep running,
// reach it again because addresses are resolved at every dial.
func netnsMoveMember(t *testing.T, g *netnsGroup, top *netnsTopology) {
	kept := map[string]*netnsProc{"m1": g.sidecar("m1"), "m3": g.sidecar("m3")}
	toM2 := []netnsPair{{"m1", "m2"}, {"m3", "m2"}}
	old := top.host("m2").Addr
	down := g.mark()
	g.stop("m2")
	g.waitUntil(10*time.Second, "m1 and m3 notice m2's sidecar is gone", func() (bool, string) {
		tl := netnsTallyPings(g.pings(down))
		if miss := netnsLacking(toM2, func(p netnsPair) bool { return tl.fail[p] > 0 }); miss != "" {
			return false, "no failed ping yet on " + miss
		}
		for _, m := range []string{"m1", "m3"} {
			if len(g.sidecarLog(down, m, "dial m2 at m2:24900", old+":24900")) == 0 {
				return false, "sidecar " + m + " has not logged a failed dial of m2 at its old address " + old
			}
		}
		return true, ""
	})

	top.moveHost("m2", 102)
	g.start("m2")
	up := g.mark()
	d := g.waitUntil(15*time.Second, fmt.Sprintf("m1 and m3 reach m2 at its new address %s", top.host("m2").Addr), func() (bool, string) {
		tl := netnsTallyPings(g.pings(up))
		miss := netnsLacking(netnsPairs("m1", "m2", "m3"), func(p netnsPair) bool {
			return tl.ok[p] > 0 || (p.From != "m2" && p.To != "m2")
		})
		return miss == "", "no ok ping yet on " + miss
	})
	t.Logf("m2 moved %s → %s: m1 and m3 reach it %v after its restart", old, top.host("m2").Addr, d.Round(time.Millisecond))
	for m, p := range kept {
		if p != g.sidecar(m) || !p.running() {
			t.Errorf("%s was restarted or died (%s); it should have kept running", p.label, p.status())
		}
	}
	tl := netnsTallyPings(g.pings(down))
	for _, p := range []netnsPair{{"m1", "m3"}, {"m3", "m1"}} {
		if tl.fail[p] > 0 || tl.ok[p] == 0 {
			t.Errorf("%s while m2 moved: %d ok, %d failed, last failure: %s", p, tl.ok[p], tl.fail[p], tl.lastFail[p])
		}
	}
}

// netnsPartition takes m1's host off the bridge: m2 and m3 fail to reach
// it (their sidecars' dials time out) while they keep talking to each
// other; with the link back, m1 is reached again.
func netnsPartition(t *testing.T, g *netnsGroup) {
	toM1 := []netnsPair{{"m2", "m1"}, {"m3", "m1"}}
	between := []netnsPair{{"m2", "m3"}, {"m3", "m2"}}
	cut := g.mark()
	cutAt := time.Now()
	g.top.setLink("m1", false)
	d := g.waitUntil(10*time.Second, "m2 and m3 lose m1 behind the partition", func() (bool, string) {
		tl := netnsTallyPings(g.pings(cut))
		if miss := netnsLacking(toM1, func(p netnsPair) bool { return tl.fail[p] > 0 }); miss != "" {
			return false, "no failed ping yet on " + miss
		}
		for _, m := range []string{"m2", "m3"} {
			if len(g.sidecarLog(cut, m, "dial m1 at m1:24900", "i/o timeout")) == 0 {
				return false, "sidecar " + m + " has not logged a dial timeout to m1"
			}
		}
		return true, ""
	})
	t.Logf("partition: m2 and m3 saw m1 fail within %v", d.Round(time.Millisecond))
	// The links that were live when the partition began carry data m1
	// never acknowledges: TCP_USER_TIMEOUT (peer_timeout) ends them.
	g.waitUntil(12*time.Second, "m2's and m3's sidecars cut their live links to m1", func() (bool, string) {
		for _, m := range []string{"m2", "m3"} {
			if len(g.sidecarLog(cut, m, `"message":"link closed"`, `"peer":"m1"`, "timed out")) == 0 {
				return false, "sidecar " + m + " has not cut a live link to m1 for a timeout"
			}
		}
		return true, ""
	})
	cutAfter := time.Since(cutAt)
	t.Logf("partition: live links to m1 cut by %v after it went silent (peer_timeout %v)", cutAfter.Round(time.Millisecond), netnsPeerTimeout)
	// TCP_USER_TIMEOUT fires peer_timeout after the first unacknowledged
	// byte; measured here 0.4 s past it. The margin is 15 times that, so a
	// loaded machine never misses it, while a link left to the kernel's
	// default (about 15 minutes of retransmissions) fails at once.
	if bound := netnsPeerTimeout + 6*time.Second; cutAfter > bound {
		t.Errorf("live links to m1 cut %v after the partition, want within peer_timeout + 6s = %v", cutAfter, bound)
	}
	g.keepTalking(between, cut, "during m1's partition")

	g.top.setLink("m1", true)
	healed := g.mark()
	d = g.waitUntil(15*time.Second, "m1 reached again after the partition heals", func() (bool, string) {
		tl := netnsTallyPings(g.pings(healed))
		miss := netnsLacking(netnsPairs("m1", "m2", "m3"), func(p netnsPair) bool { return tl.ok[p] > 0 })
		return miss == "", "no ok ping yet on " + miss
	})
	t.Logf("partition healed: every pair talks again after %v", d.Round(time.Millisecond))
}

// netnsPeerTimeout is netnsCluster's peer_timeout.
const netnsPeerTimeout = 4 * time.Second

// netnsRevoke revokes m3's certificate in the shared PKI folder: m1 and m2
// cut their live links to m3 and refuse new ones within about two seconds,
// while m1 and m2 keep talking.
func netnsRevoke(t *testing.T, g *netnsGroup, pki string) {
	toFrom3 := []netnsPair{{"m1", "m3"}, {"m3", "m1"}, {"m2", "m3"}, {"m3", "m2"}}
	between := []netnsPair{{"m1", "m2"}, {"m2", "m1"}}
	rev := g.mark()
	if out, err := runCmd(t, "certs", "revoke", "--dir", pki, "m3"); err != nil {
		t.Fatalf("certs revoke m3: %v\n%s", err, out)
	}
	// Measured at about 0.2 s from the CRL write; 5 s is 25 times that.
	d := g.waitUntil(5*time.Second, "m3 cut off after its revocation", func() (bool, string) {
		tl := netnsTallyPings(g.pings(rev))
		if miss := netnsLacking(toFrom3, func(p netnsPair) bool { return tl.fail[p] > 0 }); miss != "" {
			return false, "no failed ping yet on " + miss
		}
		for _, m := range []string{"m1", "m2"} {
			if len(g.sidecarLog(rev, m, "cutting link: peer no longer trusted", `"peer":"m3"`)) == 0 {
				return false, "sidecar " + m + ` has not logged "cutting link: peer no longer trusted" for m3`
			}
		}
		return true, ""
	})
	t.Logf("revocation: m3 cut off from m1 and m2 %v after the CRL was written", d.Round(time.Millisecond))

	after := g.keepTalking(between, rev, "after m3's revocation")
	tl := netnsTallyPings(g.pings(after))
	for _, p := range toFrom3 {
		if tl.ok[p] > 0 {
			t.Errorf("%s still succeeds after m3's revocation (%d ok pings)", p, tl.ok[p])
		}
	}
}

// keepTalking waits until every pair has pinged successfully from now on,
// and fails the test on any pair that failed since the mark from; when
// says when, for the messages. It returns the mark it waited from.
func (g *netnsGroup) keepTalking(pairs []netnsPair, from netnsMark, when string) netnsMark {
	g.t.Helper()
	seen := g.mark()
	g.waitUntil(5*time.Second, fmt.Sprintf("%v keep talking %s", pairs, when), func() (bool, string) {
		tl := netnsTallyPings(g.pings(seen))
		miss := netnsLacking(pairs, func(p netnsPair) bool { return tl.ok[p] > 0 })
		return miss == "", "no ok ping yet on " + miss
	})
	tl := netnsTallyPings(g.pings(from))
	for _, p := range pairs {
		if tl.fail[p] > 0 {
			g.t.Errorf("%s failed %s: %s", p, when, tl.lastFail[p])
		}
	}
	return seen
}
