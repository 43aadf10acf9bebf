package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNamespace is set in the copy of the test binary that runs inside the
// network namespace the test made.
const inNamespace = "GROUPWIRE_CAPTURE_NETNS"

// TestCaptureInNamespace installs the rules in a network namespace of its
// own (the test binary runs itself there) and checks them with real
// connections: a target is redirected to the capture listener and its
// original destination read back; a marked socket and a non-target address
// pass untouched; a second Install replaces the first whole; Present sees
// the table; the text form is valid nft; and without CAP_NET_ADMIN Install
// says what it needs.
func TestCaptureInNamespace(t *testing.T) {
	if os.Getenv(inNamespace) != "" {
		captureChecks(t)
		return
	}
	ip := ipCommand(t)
	ns := fmt.Sprintf("gwcap%d", os.Getpid())
	run(t, ip, "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	run(t, ip, "-n", ns, "link", "set", "lo", "up")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, os.Args[0], "-test.run=^TestCaptureInNamespace$", "-test.v")
	cmd.Env = append(os.Environ(), inNamespace+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("the checks inside the namespace failed: %v", err)
	}
}

// ipCommand returns iproute2's ip, or skips (fails with GROUPWIRE_NETNS=1)
// where namespaces cannot be made.
func ipCommand(t *testing.T) string {
	t.Helper()
	why := ""
	p, err := exec.LookPath("ip")
	switch {
	case os.Geteuid() != 0:
		why = "needs root to make a network namespace"
	case err != nil:
		why = "needs iproute2's ip"
	default:
		return p
	}
	if os.Getenv("GROUPWIRE_NETNS") == "1" {
		t.Fatalf("GROUPWIRE_NETNS=1, but the capture test %s", why)
	}
	t.Skip("the capture test " + why)
	return ""
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// testRules captures 127.0.0.2:4567 (m2) and 127.0.0.3:4567 (m3).
func testRules(targets ...Target) *Rules {
	return &Rules{Port: 24901, Mark: 0x4757, Targets: targets, Guarded: []uint16{4567}}
}

var (
	m2 = Target{Member: "m2", Channel: "group", Addr: netip.MustParseAddrPort("127.0.0.2:4567")}
	m3 = Target{Member: "m3", Channel: "group", Addr: netip.MustParseAddrPort("127.0.0.3:4567")}
)

// captureChecks runs inside the namespace.
func captureChecks(t *testing.T) {
	if present, err := Present(); err != nil || present {
		t.Fatalf("Present before any Install: %v, %v; want false", present, err)
	}
	direct := map[string]net.Listener{}
	for _, a := range []string{"127.0.0.2:4567", "127.0.0.3:4567", "127.0.0.9:4567"} {
		direct[a] = listen(t, a)
	}
	// A connection to a target opened before any rule (untracked until
	// then) keeps working once the rules are in force: only new
	// connections are captured.
	before := dial(t, "127.0.0.3:4567", 0)
	beforePeer, err := accept(t, direct["127.0.0.3:4567"])
	if err != nil {
		t.Fatal(err)
	}
	rules := testRules(m2, m3)
	if err := Install(rules); err != nil {
		t.Fatal(err)
	}
	if present, err := Present(); err != nil || !present {
		t.Fatalf("Present after Install: %v, %v; want true", present, err)
	}
	wantDelivered(t, before, beforePeer, "a connection opened before the rules")
	capture := listen(t, rules.Listen())
	// A target is captured, and its original destination read back.
	wantCaptured(t, capture, rules, "127.0.0.2:4567", m2)
	// The sidecar's own marked socket, and an address no member has, pass.
	wantDirect(t, direct["127.0.0.2:4567"], "127.0.0.2:4567", rules.Mark)
	wantDirect(t, direct["127.0.0.9:4567"], "127.0.0.9:4567", 0)
	// A second Install replaces the first whole: m2 is no longer captured.
	rules = testRules(m3)
	if err := Install(rules); err != nil {
		t.Fatal(err)
	}
	wantDirect(t, direct["127.0.0.2:4567"], "127.0.0.2:4567", 0)
	wantCaptured(t, capture, rules, "127.0.0.3:4567", m3)
	open := testRules(m2, Target{Member: m3.Member, Channel: m3.Channel, Addr: m3.Addr, Open: true})
	open.Open = []uint16{4567}
	for _, r := range []*Rules{testRules(m2, m3), open} {
		checkText(t, r)
		checkInstalledIsText(t, r)
	}
	withoutPrivilege(t, rules)
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects to addr, marking the socket when mark is not 0.
func dial(t *testing.T, addr string, mark uint32) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if mark != 0 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
			}
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accept returns the next connection on ln, bounded so that a connection
// that went elsewhere fails the test instead of hanging it.
func accept(t *testing.T, ln net.Listener) (*net.TCPConn, error) {
	t.Helper()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), nil
}

func wantCaptured(t *testing.T, capture net.Listener, rules *Rules, addr string, want Target) {
	t.Helper()
	dial(t, addr, 0)
	c, err := accept(t, capture)
	if err != nil {
		t.Fatalf("a connection to %s was not captured: %v", addr, err)
	}
	dst, err := OriginalDst(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rules.Lookup(dst); !ok || got != want {
		t.Fatalf("captured %s: original destination %s maps to %+v (%v), want %+v", addr, dst, got, ok, want)
	}
}

func wantDirect(t *testing.T, ln net.Listener, addr string, mark uint32) {
	t.Helper()
	dial(t, addr, mark)
	if _, err := accept(t, ln); err != nil {
		t.Fatalf("a connection to %s (mark %#x) did not reach it directly: %v", addr, mark, err)
	}
}

// checkText has nft check the text form, where nft is installed (CI
// installs it): what operators install with capture_rules: external.
func checkText(t *testing.T, rules *Rules) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		if os.Getenv("GROUPWIRE_NETNS") == "1" {
			t.Fatal("GROUPWIRE_NETNS=1, but nft is not installed to check the rules' text")
		}
		t.Log("nft not installed: the rules' text is not checked")
		return
	}
	// Not t.TempDir: this process drops root before the test ends, and
	// could not remove it then.
	dir, err := os.MkdirTemp("", "gwcap")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "rules.nft")
	if err := os.WriteFile(file, []byte(rules.Text()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nft, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("nft -c rejects the rules' text: %v\n%s\n%s", err, out, rules.Text())
	}
}

// wantDelivered: bytes written on c reach peer, within a bound so that a
// connection the rules broke fails instead of hanging.
func wantDelivered(t *testing.T, c, peer net.Conn, what string) {
	t.Helper()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	if _, err := io.ReadFull(peer, b[:]); err != nil {
		t.Fatalf("%s: the byte written did not arrive: %v", what, err)
	}
}

// checkInstalledIsText installs rules and has nft list them: every chain
// holds as many rules as Rules.Text prints for it, so the text operators
// install with capture_rules: external is what a managed sidecar installs.
func checkInstalledIsText(t *testing.T, rules *Rules) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Log("nft not installed: the installed rules are not compared with the text")
		return
	}
	if err := Install(rules); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nft, "list", "table", "inet", Table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, out)
	}
	if got, want := rulesPerChain(string(out)), rulesPerChain(rules.Text()); !maps.Equal(got, want) {
		t.Fatalf("installed rules per chain %v, the text prints %v\ninstalled:\n%s\ntext:\n%s", got, want, out, rules.Text())
	}
}

// rulesPerChain counts the rule lines of each chain of an nft listing.
func rulesPerChain(listing string) map[string]int {
	counts, chain := map[string]int{}, ""
	for _, line := range strings.Split(listing, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "chain "):
			chain = strings.Fields(line)[1]
			counts[chain] = 0
		case line == "}":
			chain = ""
		case chain != "" && line != "" && !strings.HasPrefix(line, "type "):
			counts[chain]++
		}
	}
	return counts
}

// withoutPrivilege drops root (and with it CAP_NET_ADMIN) for the rest of
// this process and checks that Install says what it needs.
func withoutPrivilege(t *testing.T, rules *Rules) {
	t.Helper()
	if !HasNetAdmin() {
		t.Fatal("HasNetAdmin is false for root")
	}
	if err := syscall.Setuid(65534); err != nil {
		t.Fatal(err)
	}
	if HasNetAdmin() {
		t.Fatal("HasNetAdmin is true after dropping root (check would not warn)")
	}
	err := Install(rules)
	if err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Fatalf("Install without CAP_NET_ADMIN: %v, want an error naming CAP_NET_ADMIN", err)
	}
}
