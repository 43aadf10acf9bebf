package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/groupwire/groupwire/transport"
)

// hostileTimeout is the suite's handshake_timeout: short, so that held
// connections end within the test.
const hostileTimeout = 3 * time.Second

// attack is one hostile attempt at mysql-1's link port; it returns once
// the sidecar has answered or closed the connection, and says what the
// attacker saw.
type attack struct {
	name   string
	reason transport.Reason // the groupwire_inbound_refused_total reason it must count
	run    func(t *testing.T, h *hostile) error
}

// viaDialer reports an attack made with transport's Dialer (h.dial), which
// dials from the address the kernel picks (127.0.0.1), not the attacker's.
func (a attack) viaDialer() bool {
	switch a.reason {
	case "identity mismatch", "unknown channel", "wrong member":
		return true
	}
	return false
}

// waits reports whether the attack is refused only by the handshake
// timeout; every other one must be refused before it.
func (a attack) waits() bool {
	return a.reason == transport.ReasonHandshakeTimeout || a.reason == transport.ReasonHelloTimeout || a.reason == transport.ReasonLimit
}

// hostile is the suite's group and the attacker's means.
type hostile struct {
	g        *localgroup.Group
	attacker string // the attacker's source address, 127.x.y.99
	link     string // mysql-1's link listener
	revoked  *devpki.Leaf
}

// TestHostileInputWhileStreaming runs three in-process sidecars and keeps a
// SHA-256-checked stream flowing from mysql-2 to mysql-1 while every kind
// of hostile input is thrown at mysql-1's link port. Each attempt must be
// counted under its own reason (a check that is skipped shows as another
// reason, such as a HELLO timeout), and every attempt that is not about
// time must be refused before handshake_timeout could have refused it; the
// stream must arrive whole; and goroutines and file descriptors must return
// to their baseline once the attacks are over.
func TestHostileInputWhileStreaming(t *testing.T) {
	h, logs := startHostile(t)
	stream := startStream(t, h.g)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	metrics := "http://" + h.g.Member("mysql-1").IP + ":9900/metrics"
	for _, a := range attacks() {
		before := refusedCounts(t, metrics)
		start := time.Now()
		if err := a.run(t, h); err != nil {
			t.Errorf("%s: %v", a.name, err)
			continue
		}
		// The bound is a correctness bound, not a speed one: a refusal
		// that took handshake_timeout came from the timeout, not from
		// the check the attack is aimed at. The checks take milliseconds.
		if d := time.Since(start); !a.waits() && d >= hostileTimeout {
			t.Errorf("%s: refused only after %v, as late as the handshake timeout (%v) would", a.name, d, hostileTimeout)
		}
		if err := waitRefused(metrics, before, a.reason); err != nil {
			t.Errorf("%s: %v", a.name, err)
		}
	}
	logged := refusalLines(t, logs)
	for _, a := range attacks() {
		if !logged[refusalLine{a.reason, h.attacker}] && !(a.viaDialer() && logged[refusalLine{a.reason, "127.0.0.1"}]) {
			t.Errorf("%s: no \"link refused\" line with reason %q from %s", a.name, a.reason, h.attacker)
		}
	}
	floodHidesNoOtherSource(t, h, logs)
	if err := stream.finish(); err != nil {
		t.Fatalf("the good stream broke under attack: %v\n%s", err, logs)
	}
	t.Logf("good stream arrived whole through %d attacks", len(attacks()))
	waitBaseline(t, goroutines, fds)
	if hwm := peakRSS(t); hwm > 1<<30 {
		t.Errorf("peak RSS %d MiB, bound 1024 MiB", hwm>>20)
	}
}

// startHostile runs the group in this process, with admin listeners, a
// short handshake_timeout and a small per-source limit.
func startHostile(t *testing.T) (*hostile, *testutil.LockedBuffer) {
	t.Helper()
	ip := ipPrefix()
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ip, AdminPort: 9900, Channels: []string{"group"}, NoEcho: true,
		ExtraYAML: fmt.Sprintf("handshake_timeout: %v\nlimits: {max_handshakes_per_source: 8}\n", hostileTimeout)})
	if err != nil {
		t.Fatal(err)
	}
	// A certificate for mysql-2 from the group's CA, revoked before the
	// sidecars start.
	revoked, err := g.CAs["group"].CA.Issue(devpki.LeafTemplate{CommonName: "mysql-2", DNSNames: []string{"mysql-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.CAs["group"].RevokeSerials(revoked.Cert.SerialNumber); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LockedBuffer{}
	r, err := g.Start(context.Background(), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return &hostile{g: g, attacker: ip + ".99", link: net.JoinHostPort(g.Member("mysql-1").IP, "24900"), revoked: revoked}, logs
}

func attacks() []attack {
	return []attack{
		{"connect and close", transport.ReasonClosedEarly, func(t *testing.T, h *hostile) error { h.conn(t).Close(); return nil }},
		{"random bytes", transport.ReasonNotGroupwire, func(t *testing.T, h *hostile) error { return h.raw(t, append([]byte{0}, randomBytes(512)...)) }},
		{"silent", transport.ReasonHandshakeTimeout, func(t *testing.T, h *hostile) error { return h.raw(t, nil) }},
		{"truncated ClientHello", transport.ReasonHandshakeTimeout, func(t *testing.T, h *hostile) error {
			return h.raw(t, append([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc}, randomBytes(100)...))
		}},
		{"garbage ClientHello", transport.ReasonTLSProtocol, func(t *testing.T, h *hostile) error {
			return h.raw(t, append([]byte{0x16, 0x03, 0x01, 0x00, 0x68, 0x01, 0x00, 0x00, 0x64}, randomBytes(100)...))
		}},
		{"oversized record", transport.ReasonTLSProtocol, func(t *testing.T, h *hostile) error {
			return h.raw(t, append([]byte{0x16, 0x03, 0x03, 0xff, 0xff}, randomBytes(1000)...))
		}},
		{"ALPN for another protocol", transport.ReasonTLSProtocol, func(t *testing.T, h *hostile) error {
			return h.tlsRefused(t, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
		}},
		{"TLS 1.2 with CBC-SHA1 suites only", transport.ReasonTLSProtocol, func(t *testing.T, h *hostile) error {
			return h.tlsRefused(t, &tls.Config{MaxVersion: tls.VersionTLS12, NextProtos: []string{transport.ALPN("group")},
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}})
		}},
		{"no client certificate", transport.ReasonNoClientCert, func(t *testing.T, h *hostile) error { return h.presentCert(t, tls.Certificate{}) }},
		{"certificate from another CA", transport.ReasonUnknownAuthority, func(t *testing.T, h *hostile) error { return h.foreignCert(t) }},
		{"expired certificate", transport.ReasonExpired, func(t *testing.T, h *hostile) error {
			return h.badLeaf(t, devpki.LeafTemplate{CommonName: "mysql-2", DNSNames: []string{"mysql-2"},
				NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		}},
		{"certificate not for client use", transport.ReasonBadCertificate, func(t *testing.T, h *hostile) error {
			return h.badLeaf(t, devpki.LeafTemplate{CommonName: "mysql-2", DNSNames: []string{"mysql-2"}, ServerAuthOnly: true})
		}},
		{"revoked certificate", transport.ReasonRevoked, func(t *testing.T, h *hostile) error { return h.presentLeaf(t, h.revoked) }},
		{"certificate naming no member", transport.ReasonNameMismatch, func(t *testing.T, h *hostile) error {
			return h.badLeaf(t, devpki.LeafTemplate{CommonName: "mysql-9", DNSNames: []string{"mysql-9"}})
		}},
		{"impersonation", "identity mismatch", func(t *testing.T, h *hostile) error { return h.dial(t, "mysql-3", "mysql-2", "group", "mysql-1") }},
		{"unknown channel", "unknown channel", func(t *testing.T, h *hostile) error { return h.dial(t, "mysql-2", "mysql-2", "nope", "mysql-1") }},
		{"wrong member", "wrong member", func(t *testing.T, h *hostile) error { return h.dial(t, "mysql-2", "mysql-2", "group", "mysql-3") }},
		{"TLS without HELLO", transport.ReasonHelloTimeout, func(t *testing.T, h *hostile) error { return h.afterTLS(t, nil) }},
		{"malformed HELLO", "bad hello", func(t *testing.T, h *hostile) error { return h.afterTLS(t, []byte("GW\x01\x01\x00\x03abc")) }},
		{"ACCEPT instead of HELLO", "bad hello", func(t *testing.T, h *hostile) error { return h.afterTLS(t, transport.AppendAccept(nil)) }},
		{"unknown frame type", "bad hello", func(t *testing.T, h *hostile) error { return h.afterTLS(t, []byte("GW\x01\x09\x00\x03abc")) }},
		{"oversized HELLO", transport.ReasonOversizedFrame, func(t *testing.T, h *hostile) error { return h.afterTLS(t, []byte("GW\x01\x01\xff\xff")) }},
		{"flood past max_handshakes_per_source", transport.ReasonLimit, func(t *testing.T, h *hostile) error {
			if cut := flood(t, h.attacker, h.link, 30, 3*time.Second); cut < 30-8 {
				return fmt.Errorf("only %d of 30 cut", cut)
			}
			return nil
		}},
	}
}

// raw sends data on a plain TCP connection and waits for the sidecar to
// close it.
func (h *hostile) raw(t *testing.T, data []byte) error {
	c := h.conn(t)
	defer c.Close()
	if len(data) == 0 {
		return waitClosed(c)
	}
	if _, err := c.Write(data); err != nil {
		return nil // already refused
	}
	return waitClosed(c)
}

// conn opens a TCP connection to the link port from the attacker's address.
func (h *hostile) conn(t *testing.T) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(h.attacker)}}
	c, err := d.Dial("tcp", h.link)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitClosed reads until the far side closes or resets c.
func waitClosed(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(hostileTimeout + 5*time.Second))
	_, err := io.Copy(io.Discard, c)
	if isTimeout(err) {
		return errors.New("the sidecar kept the connection open past its handshake timeout")
	}
	return nil
}

// tlsAs completes a TLS handshake with mysql-1 presenting cert, and
// returns the connection.
func (h *hostile) tlsAs(t *testing.T, cert tls.Certificate, channel string) (*tls.Conn, error) {
	c := h.conn(t)
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{transport.ALPN(channel)}}
	if cert.Certificate != nil {
		cfg.Certificates = []tls.Certificate{cert}
	}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(hostileTimeout + 5*time.Second))
	err := tc.Handshake()
	return tc, err
}

// tlsRefused tries a TLS handshake with mysql-2's real certificate and
// cfg's other settings, and expects the handshake itself to fail.
func (h *hostile) tlsRefused(t *testing.T, cfg *tls.Config) error {
	cert, err := h.g.CAs["group"].Leaves["mysql-2"].TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates, cfg.InsecureSkipVerify = []tls.Certificate{cert}, true
	tc := tls.Client(h.conn(t), cfg)
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(hostileTimeout + 5*time.Second))
	err = tc.Handshake()
	if err == nil {
		return fmt.Errorf("the handshake was accepted: %s, ALPN %q", tls.CipherSuiteName(tc.ConnectionState().CipherSuite), tc.ConnectionState().NegotiatedProtocol)
	}
	return nil
}

// foreignCert presents a certificate from a CA the group does not trust.
func (h *hostile) foreignCert(t *testing.T) error {
	ca, err := devpki.NewRootCA("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(devpki.LeafTemplate{CommonName: "mysql-2", DNSNames: []string{"mysql-2"}})
	if err != nil {
		t.Fatal(err)
	}
	return h.presentLeaf(t, leaf)
}

// badLeaf presents a certificate from the group's own CA made from tmpl.
func (h *hostile) badLeaf(t *testing.T, tmpl devpki.LeafTemplate) error {
	leaf, err := h.g.CAs["group"].CA.Issue(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return h.presentLeaf(t, leaf)
}

// presentLeaf tries a TLS handshake with leaf and expects it to fail.
func (h *hostile) presentLeaf(t *testing.T, leaf *devpki.Leaf) error {
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return h.presentCert(t, cert)
}

// presentCert tries a TLS handshake with cert (none when it is empty) and
// expects it to fail.
func (h *hostile) presentCert(t *testing.T, cert tls.Certificate) error {
	tc, err := h.tlsAs(t, cert, "group")
	defer tc.Close()
	if err == nil {
		// TLS 1.3: the server's verdict arrives after the client's
		// handshake returns.
		_, err = tc.Read(make([]byte, 1))
	}
	if err == nil {
		return errors.New("the handshake was accepted")
	}
	return nil
}

// afterTLS completes a handshake with mysql-2's real certificate and
// sends frame instead of a valid HELLO.
func (h *hostile) afterTLS(t *testing.T, frame []byte) error {
	cert, err := h.g.CAs["group"].Leaves["mysql-2"].TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	tc, err := h.tlsAs(t, cert, "group")
	if err != nil {
		return fmt.Errorf("handshake with a good certificate: %v", err)
	}
	defer tc.Close()
	if len(frame) == 0 {
		return waitClosed(tc)
	}
	if _, err := tc.Write(frame); err != nil {
		return nil
	}
	return waitClosed(tc)
}

// dial opens a link with a real Dialer: certOf's certificate, a HELLO from
// from to the member to on channel, sent to mysql-1. It must be refused.
func (h *hostile) dial(t *testing.T, certOf, from, channel, to string) error {
	pki := h.g.CAs["group"]
	st, err := certs.NewStore("attacker", certs.Source{CA: pki.Dir + "/ca.pem", Cert: pki.CertPath(certOf), Key: pki.KeyPath(certOf)})
	if err != nil {
		t.Fatal(err)
	}
	p := &transport.Policy{Channel: channel, Mode: transport.VerifyIdentity, Creds: st}
	d := transport.NewDialer(p, from, transport.Peer{Name: to, Address: h.link, Identity: "mysql-1"},
		transport.LinkOptions{HandshakeTimeout: hostileTimeout + 5*time.Second})
	link, err := d.Dial(context.Background())
	if err != nil {
		return nil
	}
	defer link.Close()
	if err := link.AwaitAccept(); err == nil {
		return errors.New("the link was accepted")
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// goodStream is a SHA-256-checked stream from mysql-2's member to a sink
// standing in for mysql-1's member, flowing until finish.
type goodStream struct {
	stop     chan struct{}
	sent     chan streamSum
	received chan streamSum
}

type streamSum struct {
	n   int64
	sum [32]byte
	err error
}

// startStream starts the stream: 64 KiB every 2 ms, about 30 MiB/s.
func startStream(t *testing.T, g *localgroup.Group) *goodStream {
	t.Helper()
	s := &goodStream{stop: make(chan struct{}), sent: make(chan streamSum, 1), received: make(chan streamSum, 1)}
	ln, err := net.Listen("tcp", g.ServiceAddr("mysql-1", "group"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go s.sink(ln)
	c, err := dialMember(g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-1", "group"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go s.source(c.(*net.TCPConn))
	return s
}

// source writes until stopped, then half-closes.
func (s *goodStream) source(c *net.TCPConn) {
	h := sha256.New()
	buf := randomBytes(64 << 10)
	var n int64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			s.sent <- streamSum{n: n, sum: [32]byte(h.Sum(nil)), err: c.CloseWrite()}
			return
		case <-tick.C:
		}
		if _, err := c.Write(buf); err != nil {
			s.sent <- streamSum{err: fmt.Errorf("send after %d bytes: %w", n, err)}
			return
		}
		h.Write(buf)
		n += int64(len(buf))
	}
}

// sink hashes the one connection it accepts until its end.
func (s *goodStream) sink(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		s.received <- streamSum{err: err}
		return
	}
	defer c.Close()
	h := sha256.New()
	n, err := io.Copy(h, c)
	s.received <- streamSum{n: n, sum: [32]byte(h.Sum(nil)), err: err}
}

// finish stops the source and compares what arrived with what was sent.
func (s *goodStream) finish() error {
	close(s.stop)
	sent := <-s.sent
	if sent.err != nil {
		return sent.err
	}
	var got streamSum
	select {
	case got = <-s.received:
	case <-time.After(30 * time.Second):
		return errors.New("the stream's end never reached the sink")
	}
	switch {
	case got.err != nil:
		return fmt.Errorf("sink: %w after %d bytes", got.err, got.n)
	case got.n != sent.n || got.sum != sent.sum:
		return fmt.Errorf("sent %d bytes, received %d; checksums match: %v", sent.n, got.n, got.sum == sent.sum)
	}
	return nil
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// waitBaseline waits for goroutines and file descriptors to come back to
// where they were before the attacks (a few of slack for the runtime and
// the HTTP client's idle connections).
func waitBaseline(t *testing.T, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(hostileTimeout + 10*time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines+4 && f <= fds+4 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("after the attacks: %d goroutines (baseline %d), %d fds (baseline %d)\n%s", g, goroutines, f, fds, buf[:n])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peakRSS is this process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// refusedCounts reads groupwire_inbound_refused_total by reason.
func refusedCounts(t *testing.T, url string) map[transport.Reason]float64 {
	t.Helper()
	counts, err := readRefused(url)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func readRefused(url string) (map[transport.Reason]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	const prefix = `groupwire_inbound_refused_total{reason="`
	counts := make(map[transport.Reason]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		reason, value, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %v", url, sc.Text(), err)
		}
		counts[transport.Reason(reason)] = v
	}
	return counts, sc.Err()
}

// waitRefused waits until the refusal count of reason has grown past
// before; if it does not, it names the reasons that grew instead. The
// bound is generous: the count is set as the refusal is made, before the
// attacker sees the connection end.
func waitRefused(url string, before map[transport.Reason]float64, reason transport.Reason) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, err := readRefused(url)
		if err != nil {
			return err
		}
		if now[reason] > before[reason] {
			return nil
		}
		if time.Now().After(deadline) {
			var grew []string
			for r, n := range now {
				if n > before[r] {
					grew = append(grew, fmt.Sprintf("%q +%v", r, n-before[r]))
				}
			}
			return fmt.Errorf("no refusal counted as %q; counted instead: %v", reason, grew)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// floodHidesNoOtherSource floods mysql-1 with revoked certificates from
// the attacker's address, well past the log's burst, then presents the
// revoked certificate once from another address: that one refusal must
// be logged with its reason and source.
func floodHidesNoOtherSource(t *testing.T, h *hostile, logs *testutil.LockedBuffer) {
	t.Helper()
	for range 3 * 10 {
		if err := h.presentLeaf(t, h.revoked); err != nil {
			t.Fatal(err)
		}
	}
	other := *h
	other.attacker = strings.TrimSuffix(h.attacker, ".99") + ".98"
	if err := other.presentLeaf(t, h.revoked); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second) // the line is written as the refusal is made
	for !refusalLines(t, logs)[refusalLine{transport.ReasonRevoked, other.attacker}] {
		if time.Now().After(deadline) {
			t.Fatalf("after a flood of revoked certificates from %s, the one from %s was not logged", h.attacker, other.attacker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusalLine is what a "link refused" or limit log line says: the reason
// and the source address.
type refusalLine struct {
	reason transport.Reason
	source string
}

// refusalLines reads the JSON log's refusal lines.
func refusalLines(t *testing.T, logs *testutil.LockedBuffer) map[refusalLine]bool {
	t.Helper()
	out := make(map[refusalLine]bool)
	for _, line := range strings.Split(logs.String(), "\n") {
		var e struct{ Message, Reason, Remote string }
		if json.Unmarshal([]byte(line), &e) != nil || e.Reason == "" || !strings.Contains(e.Message, "refused") {
			continue
		}
		host, _, _ := net.SplitHostPort(e.Remote)
		out[refusalLine{transport.Reason(e.Reason), host}] = true
	}
	return out
}
