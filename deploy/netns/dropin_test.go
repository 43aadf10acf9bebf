//go:build linux

package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/testutil"
)

// dropInPeerPort is etcd's own default peer port, the same on every host:
// drop-in mode asks no renumbering. dropInWhoamiPort is a second channel's,
// where a tiny member tells each connection its source address.
const (
	dropInPeerPort   = "2380"
	dropInWhoamiPort = "7000"
)

// dropInFile is a drop-in cluster file for a test group: VERIFY_IDENTITY
// with the PKI that certs init made in the test's folder, every member at
// its host's name, channels (name, port) on the same port at every member,
// then extra (timings, admin).
func dropInFile(group string, channels [][2]string, members []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "group: %s\ncapture: transparent\ntls:\n  ssl_mode: VERIFY_IDENTITY\n", group)
	b.WriteString("  ssl_ca: pki/ca.pem\n  ssl_cert: pki/${GROUPWIRE_MEMBER}.pem\n  ssl_key: pki/${GROUPWIRE_MEMBER}-key.pem\n  ssl_crl: pki/crl.pem\n")
	var names, ports []string
	for _, c := range channels {
		names = append(names, c[0]+": {}")
		ports = append(ports, c[0]+": "+c[1])
	}
	fmt.Fprintf(&b, "channels: {%s}\nmembers:\n", strings.Join(names, ", "))
	for _, m := range members {
		fmt.Fprintf(&b, "  %s: {address: \"%s:24900\", ports: {%s}}\n", m, m, strings.Join(ports, ", "))
	}
	return b.String() + extra
}

// dropInClusterFile is the etcd group's drop-in cluster file.
func dropInClusterFile(members []string) string {
	return dropInFile("etcd-dropin", [][2]string{{"peer", dropInPeerPort}, {"whoami", dropInWhoamiPort}}, members,
		"dial_timeout: 1s\nhandshake_timeout: 3s\npeer_timeout: 4s\nprobe_interval: 1s\nreload_interval: 1h\nadmin: \"127.0.0.1:9900\"\n")
}

// startEtcdAsInstalled runs member's etcd as a plain install would: peer
// URL http://<its host's address>:2380, the other members at theirs.
func (eg *etcdGroup) startEtcdAsInstalled(member string, cluster []string) {
	eg.t.Helper()
	var initial []string
	for _, m := range cluster {
		initial = append(initial, fmt.Sprintf("%s=http://%s:%s", m, eg.top.host(m).Addr, dropInPeerPort))
	}
	peer := fmt.Sprintf("http://%s:%s", eg.top.host(member).Addr, dropInPeerPort)
	p := startNetnsProc(eg.t, eg.top.ip, eg.top.host(member).NS, "etcd "+member, eg.etcd,
		"--name", member, "--data-dir", filepath.Join(eg.dir, member+".etcd"),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "gw-etcd-dropin",
		"--pre-vote=true", "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap", "--log-level", "warn")
	eg.etcds[member], eg.all = p, append(eg.all, p)
}

// TestEtcdDropIn runs a real three-member etcd cluster in drop-in mode:
// each member and its sidecar share a namespace (a pod), etcd is set up
// exactly as without groupwire (its host's address, port 2380 everywhere),
// and the sidecars capture its peer traffic. A writer puts keys through e1
// throughout. The bridge between the hosts must carry not one packet on
// port 2380 for the whole run, while the link port carries the traffic; a
// fourth host with no sidecar cannot reach any member's 2380; a SIGKILLed
// sidecar leaves its member cut off (still no plaintext on the bridge),
// and the member heals when the sidecar is back. Every acknowledged write
// is read back from every member.
func TestEtcdDropIn(t *testing.T) {
	ipPath := netnsIPCommand(t)
	etcd, etcdctl := etcdBinaries(t)
	nft := nftCommand(t)
	t.Parallel()
	three := []string{"e1", "e2", "e3"}
	hosts := append(three, "outsider")
	eg := newEtcdGroup(t, ipPath, etcd, etcdctl, hosts, three)
	wire := watchBridge(t, eg.top, nft, []string{dropInPeerPort, dropInWhoamiPort}, "outsider")
	for _, m := range three {
		eg.writeConfig(m, dropInClusterFile(three))
		eg.startSidecar(m)
		eg.waitFor(15*time.Second, m+"'s sidecar installs its rules and serves", func() (bool, string) {
			return eg.logCount(m, `"message":"sidecar running"`) > 0, "not running yet"
		})
	}
	for _, m := range three {
		eg.startEtcdAsInstalled(m, three)
	}
	for _, m := range three {
		eg.readable(m)
	}
	eg.leadFrom("e1", three)
	w := startEtcdWriter(eg, "e1")
	w.during("drop-in formation")
	w.progress(10, "once formed")
	wire.noPlaintext("the cluster formed")
	dropInOutsiderRefused(t, eg, three)
	dropInKeepsSource(t, eg, "e1", "e2")

	w.during("e2's sidecar killed")
	eg.sidecars["e2"].stop() // SIGKILL: the rules stay, fail closed
	w.progress(10, "with e2's sidecar down")
	dropInCutOff(t, eg, "e2", "e1")
	wire.noPlaintext("e2's sidecar was killed")
	eg.startSidecar("e2")
	eg.readable("e2")
	eg.leadFrom("e1", three)
	w.progress(10, "after e2's sidecar came back")
	w.during("e1's capture rules reloaded")
	dropInReloadsRules(t, eg, nft, three)
	w.progress(5, "after e1's rules were reloaded")
	w.finish()
	wire.noPlaintext("the end")
	etcdReadBack(t, eg, w, len(w.order))
}

// nftCommand returns the nft command, which the test uses to count what
// crosses the bridge (the product itself never shells out to it).
func nftCommand(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nft")
	if err != nil {
		netnsUnavailable(t, "the drop-in test counts packets on the bridge with nft (Debian's nftables package)")
	}
	return p
}

// bridgeWatch counts, in the switch namespace, the TCP packets the bridge
// forwards between the members' hosts to or from the members' own ports,
// and to or from the link port. A host that is not a member (its own
// refused attempts are not member traffic) is left out.
type bridgeWatch struct {
	t       *testing.T
	top     *netnsTopology
	nft     string
	ports   []string
	counter *regexp.Regexp
}

// watchBridge installs the counters for ports; outsider, if not "", is a
// host whose packets are not counted.
func watchBridge(t *testing.T, top *netnsTopology, nft string, ports []string, outsider string) *bridgeWatch {
	t.Helper()
	members := "ether type ip"
	if outsider != "" {
		members += " ip saddr != " + top.host(outsider).Addr + " ip daddr != " + top.host(outsider).Addr
	}
	var b strings.Builder
	b.WriteString("table bridge gwwatch {\n\tchain watch {\n\t\ttype filter hook forward priority 0; policy accept;\n")
	for _, p := range ports {
		fmt.Fprintf(&b, "\t\t%s tcp dport %s counter comment \"plain\"\n\t\t%s tcp sport %s counter comment \"plain\"\n", members, p, members, p)
	}
	b.WriteString("\t\tether type ip tcp dport 24900 counter comment \"link\"\n\t\tether type ip tcp sport 24900 counter comment \"link\"\n\t}\n}\n")
	cmd := exec.Command(top.ip, "netns", "exec", top.sw, nft, "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bridge counters: %v\n%s\n%s", err, out, b.String())
	}
	return &bridgeWatch{t: t, top: top, nft: nft, ports: ports, counter: regexp.MustCompile(`counter packets (\d+) bytes \d+ comment "(\w+)"`)}
}

// counts returns the packets counted per comment.
func (b *bridgeWatch) counts() map[string]int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.top.ip, "netns", "exec", b.top.sw, b.nft, "list", "table", "bridge", "gwwatch").CombinedOutput()
	if err != nil {
		b.t.Fatalf("read bridge counters: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, m := range b.counter.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		got[m[2]] += n
	}
	return got
}

// noPlaintext checks that no packet to or from the members' own ports
// crossed the bridge so far, and that the links did carry traffic.
func (b *bridgeWatch) noPlaintext(when string) {
	b.t.Helper()
	c := b.counts()
	if c["plain"] != 0 || c["link"] == 0 {
		b.t.Fatalf("by %s the bridge carried %d packets on ports %v (want none) and %d on the link port (want some)", when, c["plain"], b.ports, c["link"])
	}
	b.t.Logf("by %s: %d packets on the link port, none on %v", when, c["link"], b.ports)
}

// dropInOutsiderRefused: a host with no sidecar reaches no member's etcd
// peer port (the members' rules refuse it), while their link ports answer.
func dropInOutsiderRefused(t *testing.T, eg *etcdGroup, members []string) {
	t.Helper()
	for _, m := range members {
		addr := eg.top.host(m).Addr
		if err := eg.shell("outsider", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", addr, dropInPeerPort)); err == nil {
			t.Fatalf("a host without groupwire reached %s's etcd at %s:%s", m, addr, dropInPeerPort)
		}
		if err := eg.shell("outsider", fmt.Sprintf("exec 3<>/dev/tcp/%s/24900", addr)); err != nil {
			t.Fatalf("%s's link port at %s:24900 does not answer: %v (the refusal above would prove nothing)", m, addr, err)
		}
	}
}

// dropInCutOff: with member's sidecar down, its etcd cannot reach a peer
// (from's address, port 2380): its connection is refused on its own host.
func dropInCutOff(t *testing.T, eg *etcdGroup, member, peer string) {
	t.Helper()
	addr := eg.top.host(peer).Addr
	if err := eg.shell(member, fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", addr, dropInPeerPort)); err == nil {
		t.Fatalf("with its sidecar killed, %s still reached %s's etcd at %s:%s", member, peer, addr, dropInPeerPort)
	}
}

// dropInKeepsSource: a connection from's member opens to to's address
// reaches to's member from from's own address, as it would with no
// sidecar (Galera and MySQL's allowlist read it).
func dropInKeepsSource(t *testing.T, eg *etcdGroup, from, to string) {
	t.Helper()
	addr := eg.top.host(to).Addr
	p := startNetnsProc(t, eg.top.ip, eg.top.host(to).NS, "whoami "+to, os.Args[0], "-whoami", net.JoinHostPort(addr, dropInWhoamiPort))
	eg.all = append(eg.all, p)
	want := "from " + eg.top.host(from).Addr
	eg.waitFor(10*time.Second, to+"'s member sees "+from+"'s address", func() (bool, string) {
		out, err := eg.shellOut(from, fmt.Sprintf("exec 3<>/dev/tcp/%s/%s && head -n 1 <&3", addr, dropInWhoamiPort))
		return out == want, fmt.Sprintf("%q (%v), want %q", out, err, want)
	})
}

// dropInReloadsRules: a cluster-file reload that adds a member puts its
// address in the capture rules, and one that removes it takes it out; the
// rules are read back from e1's namespace.
func dropInReloadsRules(t *testing.T, eg *etcdGroup, nft string, members []string) {
	t.Helper()
	outsider := eg.top.host("outsider").Addr
	rules := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, eg.top.ip, "netns", "exec", eg.top.host("e1").NS, nft, "list", "table", "inet", "groupwire").CombinedOutput()
		return string(out)
	}
	grown := strings.Replace(dropInClusterFile(members), "members:\n", "members:\n  outsider: {address: \"outsider:24900\", ports: {peer: 2380, whoami: 7000}}\n", 1)
	eg.reconfigure("e1", grown)
	eg.waitFor(10*time.Second, "e1's rules to capture the new member's address", func() (bool, string) {
		r := rules()
		return strings.Contains(r, "ip daddr "+outsider+" tcp dport 2380"), r
	})
	eg.reconfigure("e1", dropInClusterFile(members))
	eg.waitFor(10*time.Second, "e1's rules to drop the removed member's address", func() (bool, string) {
		r := rules()
		return !strings.Contains(r, outsider) && strings.Contains(r, "tcp dport 2380"), r
	})
}

// TestDropInExternalRules: with capture_rules: external the sidecar does
// not serve until the rules are in place (it would let the member talk
// plaintext), and `groupwire capture` is the install step that puts them
// there; the sidecar then serves.
func TestDropInExternalRules(t *testing.T) {
	ipPath := netnsIPCommand(t)
	t.Parallel()
	members := []string{"m1", "m2"}
	top := newNetnsTopology(t, ipPath, members)
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	yaml := "group: external\ncapture: transparent\ncapture_rules: external\ntls: {ssl_mode: DISABLED}\nchannels: {peer: {}}\nmembers:\n" +
		"  m1: {address: \"m1:24900\", ports: {peer: 2380}}\n  m2: {address: \"m2:24900\", ports: {peer: 2380}}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := testutil.Groupwire(t)
	inHost := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ipPath, append([]string{"netns", "exec", top.host("m1").NS, bin}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := inHost("run", "--config", file, "--member", "m1")
	if err == nil || !strings.Contains(out, "capture_rules is external, but nftables table inet groupwire is not installed") {
		t.Fatalf("run without the external rules: %v, want a refusal saying they are missing:\n%s", err, out)
	}
	if out, err := inHost("capture", "--config", file, "--member", "m1"); err != nil {
		t.Fatalf("groupwire capture: %v\n%s", err, out)
	}
	p := startNetnsProc(t, ipPath, top.host("m1").NS, "sidecar m1", bin, "run", "--config", file, "--member", "m1", "--log-format", "json")
	netnsWaitUntil(t, 15*time.Second, "the sidecar to serve once the rules are installed", func() (bool, string) {
		return strings.Contains(p.out.String(), `"message":"sidecar running"`), p.out.String()
	}, func() string { return netnsDump([]*netnsProc{p}) })
}

// TestDropInGuardsIPv6: the member's channel ports are closed to other
// hosts over IPv6 as well as IPv4 (guard_in matches TCP of either family).
// m1 gets an IPv6 address beside its IPv4 one and echo services at it on
// its channel port and on a port that is not a channel's; a host without
// groupwire reaches the second and is reset at the first, which m1 itself
// still reaches.
func TestDropInGuardsIPv6(t *testing.T) {
	ipPath := netnsIPCommand(t)
	t.Parallel()
	top := newNetnsTopology(t, ipPath, []string{"m1", "m2", "outsider"})
	prefix := "fd00:231:" + top.subnet[strings.LastIndex(top.subnet, ".")+1:] + "::"
	for n, h := range map[int]string{1: "m1", 3: "outsider"} {
		if err := top.run("-n", top.host(h).NS, "addr", "add", fmt.Sprintf("%s%d/64", prefix, n), "dev", "e0", "nodad"); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	yaml := "group: guard6\ncapture: transparent\ntls: {ssl_mode: DISABLED}\nchannels: {peer: {}}\nmembers:\n" +
		"  m1: {address: \"m1:24900\", ports: {peer: 2380}}\n  m2: {address: \"m2:24900\", ports: {peer: 2380}}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, m1 := testutil.Groupwire(t), top.host("m1").NS
	sidecar := startNetnsProc(t, ipPath, m1, "sidecar m1", bin, "run", "--config", file, "--member", "m1", "--log-format", "json")
	procs := []*netnsProc{sidecar}
	dump := func() string { return netnsDump(procs) }
	netnsWaitUntil(t, 15*time.Second, "m1's sidecar to install its rules and serve", func() (bool, string) {
		return strings.Contains(sidecar.out.String(), `"message":"sidecar running"`), "not yet"
	}, dump)
	channel, other := "["+prefix+"1]:2380", "["+prefix+"1]:2390"
	for _, addr := range []string{channel, other} {
		procs = append(procs, startNetnsProc(t, ipPath, m1, "echo "+addr, bin, "member", "--name", "m1", "--listen", addr))
	}
	dialFrom := func(host, addr string) error { // addr is [v6]:port
		h, port, _ := net.SplitHostPort(addr)
		if out, err := top.shell(host, fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", h, port)); err != nil {
			return fmt.Errorf("connect to %s from %s: %w: %s", addr, host, err, out)
		}
		return nil
	}
	netnsWaitUntil(t, 15*time.Second, "the outsider to reach m1's echo service on "+other+" over IPv6", func() (bool, string) {
		err := dialFrom("outsider", other)
		return err == nil, fmt.Sprint(err)
	}, dump)
	netnsWaitUntil(t, 15*time.Second, "m1 to reach its own echo service on "+channel, func() (bool, string) {
		err := dialFrom("m1", channel)
		return err == nil, fmt.Sprint(err)
	}, dump)
	if err := dialFrom("outsider", channel); err == nil {
		t.Fatalf("a host without groupwire reached m1's channel port over IPv6 at %s", channel)
	}
}
