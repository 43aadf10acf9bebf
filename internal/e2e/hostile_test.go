package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/transport"
)

// hostileGroup runs mysql-1 and mysql-2 as real sidecar processes with
// echo services, the given extra cluster-file lines, and admin listeners.
func hostileGroup(t *testing.T, extra string) (*localgroup.Group, map[string]*process) {
	t.Helper()
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		Members: []string{"mysql-1", "mysql-2"}, Channels: []string{"group"}, ExtraYAML: extra})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	procs := map[string]*process{}
	for _, m := range g.Members {
		echo, err := localgroup.ListenEcho(ctx, m.Name, g.ServiceAddr(m.Name, "group"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(echo.Close)
		procs[m.Name] = startSidecar(t, g, m.Name)
	}
	return g, procs
}

// flood opens n TCP connections from the address from to addr, sends
// nothing on them, as a flood of idle handshakes does, and returns how many
// the far side closed or reset within wait. A reset can come so fast that
// the dial itself reports it.
func flood(t *testing.T, from, addr string, n int, wait time.Duration) (cut int) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	var conns []*net.TCPConn
	for range n {
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			cut++
			continue
		}
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		conns = append(conns, c.(*net.TCPConn))
	}
	cut += countCut(conns, wait)
	for _, c := range conns {
		c.Close()
	}
	return cut
}

// countCut returns how many of conns the far side has closed or reset
// within wait. Each is read in its own goroutine: a read under a deadline
// that has passed reports a timeout without looking at the socket.
func countCut(conns []*net.TCPConn, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	results := make(chan bool, len(conns))
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(deadline)
			var b [1]byte
			_, err := c.Read(b[:])
			results <- err != nil && !isTimeout(err)
		}()
	}
	cut := 0
	for range conns {
		if <-results {
			cut++
		}
	}
	return cut
}

// TestHandshakeFloodFromOneSourceIsBounded: one source opening far more
// silent connections than max_handshakes_per_source gets only that many
// held; the rest are reset at once and counted, their log lines are
// rate-limited, and a peer on another source still links.
func TestHandshakeFloodFromOneSourceIsBounded(t *testing.T) {
	const perSource, conns = 8, 60
	g, procs := hostileGroup(t, fmt.Sprintf("handshake_timeout: 30s\nlimits: {max_handshakes: 64, max_handshakes_per_source: %d}\n", perSource))
	attacker := g.Member("mysql-1").IP[:strings.LastIndex(g.Member("mysql-1").IP, ".")] + ".99"
	// Refused connections are reset at once; the held ones wait for the
	// 30 s handshake_timeout. 3 s tells the two apart on a loaded machine.
	if cut := flood(t, attacker, net.JoinHostPort(g.Member("mysql-1").IP, "24900"), conns, 3*time.Second); cut != conns-perSource {
		t.Fatalf("%d of %d flood connections were cut, want %d (all but max_handshakes_per_source)\n%s", cut, conns, conns-perSource, procs["mysql-1"].logs)
	}
	if _, err := g.Ping(context.Background(), "mysql-2", "mysql-1", "group", "still here"); err != nil {
		t.Fatalf("a good peer could not link during the flood: %v\n%s", err, procs["mysql-1"].logs)
	}
	metrics := "http://" + g.Member("mysql-1").IP + ":9900/metrics"
	waitMetricSum(t, metrics, `groupwire_inbound_refused_total{reason="limit"}`, conns-perSource)
	if n := strings.Count(procs["mysql-1"].logs.String(), "connection refused: limit reached"); n > 10 {
		t.Errorf("%d refusal lines for one flood: the log is not rate-limited", n)
	}
}

// TestLoopbackPendingIsBounded: local connections waiting for a link to a
// peer whose sidecar never answers are bounded by max_loopback_pending;
// the rest are reset at once and counted.
func TestLoopbackPendingIsBounded(t *testing.T) {
	const pending, conns = 4, 20
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		Members: []string{"mysql-1", "mysql-2"}, Channels: []string{"group"},
		ExtraYAML: fmt.Sprintf("handshake_timeout: 30s\nlimits: {max_loopback_pending: %d}\n", pending)})
	if err != nil {
		t.Fatal(err)
	}
	// mysql-2's "sidecar" accepts TCP and never speaks TLS: every link
	// from mysql-1 waits for its handshake.
	silent, err := net.Listen("tcp", net.JoinHostPort(g.Member("mysql-2").IP, "24900"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := startProcess(t, "run", "--config", g.ConfigPath, "--member", "mysql-1", "--log-format", "json")
	waitReady(t, "http://"+g.Member("mysql-1").IP+":9900/readyz", p)
	if cut := flood(t, g.Member("mysql-1").IP, g.TunnelAddr("mysql-1", "mysql-2", "group"), conns, 3*time.Second); cut != conns-pending {
		t.Fatalf("%d of %d loopback connections were cut, want %d\n%s", cut, conns, conns-pending, p.logs)
	}
	waitMetricSum(t, "http://"+g.Member("mysql-1").IP+":9900/metrics", `groupwire_outbound_refused_total{reason="limit"}`, conns-pending)
}

// TestLinksPerPeerIsBounded: past max_links_per_peer, a new link to the
// peer is reset at once while the established ones keep working.
func TestLinksPerPeerIsBounded(t *testing.T) {
	const max = 3
	g, procs := hostileGroup(t, fmt.Sprintf("limits: {max_links_per_peer: %d}\n", max))
	var held []net.Conn
	for i := range max {
		c, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := echoLine(c, "mysql-2", fmt.Sprint("link ", i)); err != nil {
			t.Fatalf("link %d: %v\n%s", i, err, procs["mysql-1"].logs)
		}
		held = append(held, c)
	}
	// The reset can come so fast that the dial itself reports it.
	extra, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group"))
	if err == nil {
		defer extra.Close()
		err = echoLine(extra, "mysql-2", "one too many")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("link %d past max_links_per_peer: %v, want a reset", max+1, err)
	}
	for i, c := range held {
		if err := echoLine(c, "mysql-2", "still up"); err != nil {
			t.Fatalf("established link %d hurt by the limit: %v", i, err)
		}
	}
	waitMetricSum(t, "http://"+g.Member("mysql-1").IP+":9900/metrics", `groupwire_outbound_refused_total{reason="limit"}`, 1)

	// mysql-2 enforces the limit too, from the refusing side: a dialer
	// holding mysql-1's credentials, not bound by mysql-1's own limit,
	// asks for a fourth link and is refused with the limit's name.
	refusal := rawLink(t, g, "mysql-1", "mysql-2")
	if refusal == nil || !strings.Contains(refusal.Error(), "max_links_per_peer") {
		t.Fatalf("link %d from a raw dialer: %v, want a refusal naming max_links_per_peer\n%s", max+1, refusal, procs["mysql-2"].logs)
	}
	waitMetricSum(t, "http://"+g.Member("mysql-2").IP+":9900/metrics", `groupwire_inbound_refused_total{reason="limit"}`, 1)
	for i, c := range held {
		if err := echoLine(c, "mysql-2", "still up"); err != nil {
			t.Fatalf("established link %d hurt by the refusal: %v", i, err)
		}
	}
}

// rawLink dials member to's link port with transport's Dialer and from's
// credentials, bypassing from's sidecar, and returns the refusal, or nil if
// the link was accepted.
func rawLink(t *testing.T, g *localgroup.Group, from, to string) error {
	t.Helper()
	pki := g.CAs["group"]
	st, err := certs.NewStore("raw "+from, certs.Source{CA: pki.Dir + "/ca.pem", Cert: pki.CertPath(from), Key: pki.KeyPath(from)})
	if err != nil {
		t.Fatal(err)
	}
	p := &transport.Policy{Channel: "group", Mode: transport.VerifyIdentity, Creds: st}
	d := transport.NewDialer(p, from, transport.Peer{Name: to, Address: net.JoinHostPort(g.Member(to).IP, "24900"), Identity: to},
		transport.LinkOptions{HandshakeTimeout: 10 * time.Second})
	link, err := d.Dial(context.Background())
	if err != nil {
		t.Fatalf("raw dial %s → %s: %v", from, to, err)
	}
	defer link.Close()
	return link.AwaitAccept()
}

// TestHandshakesAreBoundedAcrossSources: max_handshakes bounds the
// connections not yet past HELLO from all sources together. Ten source
// addresses open two silent connections each, within
// max_handshakes_per_source; only max_handshakes of the twenty are held,
// the rest are reset at once, counted and logged with the limit's name.
func TestHandshakesAreBoundedAcrossSources(t *testing.T) {
	const maxHandshakes, sources, perSource = 8, 10, 2
	// No probes: mysql-2's probe of mysql-1 would take a handshake place.
	g, procs := hostileGroup(t, fmt.Sprintf("handshake_timeout: 30s\nprobe_interval: 0\nlimits: {max_handshakes: %d, max_handshakes_per_source: %d}\n", maxHandshakes, perSource))
	prefix := g.Member("mysql-1").IP[:strings.LastIndex(g.Member("mysql-1").IP, ".")]
	addr := net.JoinHostPort(g.Member("mysql-1").IP, "24900")
	var conns []*net.TCPConn
	cut := 0
	for i := range sources * perSource {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("%s.%d", prefix, 100+i%sources))}}
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			cut++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c.(*net.TCPConn))
	}
	// Refused connections are reset at once; the held ones wait for the
	// 30 s handshake_timeout. 3 s tells the two apart on a loaded machine.
	if cut += countCut(conns, 3*time.Second); cut != sources*perSource-maxHandshakes {
		t.Fatalf("%d of %d connections were cut, want %d (all but max_handshakes)\n%s", cut, sources*perSource, sources*perSource-maxHandshakes, procs["mysql-1"].logs)
	}
	waitMetricSum(t, "http://"+g.Member("mysql-1").IP+":9900/metrics", `groupwire_inbound_refused_total{reason="limit"}`, float64(cut))
	waitLog(t, procs["mysql-1"], `"limit":"max_handshakes"`)
}

// echoLine sends one line and reads the echo service's answer.
func echoLine(c net.Conn, to, msg string) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(to)+2+len(msg)+1)
	if _, err := readFull(c, buf); err != nil {
		return err
	}
	if want := to + ": " + msg + "\n"; string(buf) != want {
		return fmt.Errorf("echo %q, want %q", buf, want)
	}
	return nil
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestAllowedUIDs: with allowed_uids naming another user (nobody), a
// process of that user, dialing from a child process, gets through, and a
// process of the sidecar's own user (root here) is reset, logged with its
// uid and counted. Both ends running as one user could not tell the
// peer's uid from the sidecar's own socket's.
func TestAllowedUIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to dial as another user")
	}
	const nobody = 65534
	g, procs := hostileGroup(t, fmt.Sprintf("allowed_uids: [%d]\n", nobody))
	tunnel := g.TunnelAddr("mysql-1", "mysql-2", "group")
	t.Run("another uid allowed", func(t *testing.T) {
		if out, err := echoAs(t, nobody, g.Member("mysql-1").IP, tunnel, "mysql-2"); err != nil {
			t.Fatalf("a process of allowed uid %d was refused: %v\n%s\n%s", nobody, err, out, procs["mysql-1"].logs)
		}
	})
	t.Run("own uid not allowed", func(t *testing.T) {
		c, err := dialMember(g, "mysql-1", tunnel)
		if err == nil {
			defer c.Close()
			err = echoLine(c, "mysql-2", "let me through")
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("a process of a uid not allowed got %v, want a reset\n%s", err, procs["mysql-1"].logs)
		}
		waitLog(t, procs["mysql-1"], fmt.Sprintf(`"uid":%d`, os.Getuid()))
		waitLog(t, procs["mysql-1"], "uid not in allowed_uids")
		waitMetricSum(t, "http://"+g.Member("mysql-1").IP+":9900/metrics", `groupwire_outbound_refused_total{reason="uid"}`, 1)
	})
}

// echoDialEnv makes the test binary, run as a child, dial and echo one
// line instead of running tests (see TestMain): "from addr to".
const echoDialEnv = "GROUPWIRE_TEST_ECHO_DIAL"

// echoAs runs a copy of the test binary as uid, which dials addr from the
// address from and expects member to's echo of one line.
func echoAs(t *testing.T, uid int, from, addr, to string) (string, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "groupwire-echo-as")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "echo-as")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), echoDialEnv+"="+strings.Join([]string{from, addr, to}, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// echoDialChild is the child's side of echoAs: it exits 0 if the echo came
// back, 1 with the error otherwise.
func echoDialChild(spec string) {
	f := strings.Fields(spec)
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(f[0])}}
	c, err := d.Dial("tcp", f[1])
	if err == nil {
		err = echoLine(c, f[2], fmt.Sprintf("from uid %d", os.Getuid()))
		c.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
