package relay

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupwire/groupwire/transport"
)

// The relay's hot path over real loopback sockets and real TLS 1.3:
// member socket → relay → tls.Conn (the dialing side) and tls.Conn →
// relay → member socket (the accepting side).

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (*net.TCPConn, *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatalf("accept: %v", r.err)
	}
	ta, tb2 := a.(*net.TCPConn), r.c.(*net.TCPConn)
	tb.Cleanup(func() { ta.Close(); tb2.Close() })
	return ta, tb2
}

// testCert makes a throwaway self-signed ECDSA P-256 certificate.
func testCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay-bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"relay-bench"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsPair returns a handshaken TLS 1.3 (AES-128-GCM) connection over
// loopback: the client and server tls.Conns and their sockets.
func tlsPair(tb testing.TB) (client, server Endpoint) {
	tb.Helper()
	rc, rs := tcpPair(tb)
	cert := testCert(tb)
	sockC, sockS := transport.NewSocket(rc), transport.NewSocket(rs)
	cs := tls.Server(sockS, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
	cc := tls.Client(sockC, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
	errc := make(chan error, 1)
	go func() { errc <- cs.Handshake() }()
	if err := cc.Handshake(); err != nil {
		tb.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		tb.Fatalf("server handshake: %v", err)
	}
	if cc.ConnectionState().CipherSuite != tls.TLS_AES_128_GCM_SHA256 {
		tb.Logf("negotiated %s", tls.CipherSuiteName(cc.ConnectionState().CipherSuite))
	}
	return Endpoint{Conn: cc, Raw: rc, Socket: sockC}, Endpoint{Conn: cs, Raw: rs, Socket: sockS}
}

// relayRig is one relay direction with its feeder and its reader.
type relayRig struct {
	feed  io.Writer // writes into the relay's source
	drain io.Reader // reads what the relay delivered
	pool  *Pool
	done  chan error
}

// tcpToTLS runs Pipe(member socket → tls.Conn). The far end reads the
// raw TLS records without decrypting them, so every allocation counted is
// the relay's.
func tcpToTLS(tb testing.TB) *relayRig {
	feed, member := tcpPair(tb)
	client, server := tlsPair(tb)
	r := &relayRig{feed: feed, drain: server.Raw, pool: NewPool(), done: make(chan error, 1)}
	go func() {
		_, err := Pipe(client, TCP(member), r.pool)
		r.done <- err
	}()
	return r
}

// tlsToTCP runs Pipe(tls.Conn → member socket). The feeder's writes of
// several records go out in one syscall, as a batching relay's would.
func tlsToTCP(tb testing.TB) *relayRig {
	member, drain := tcpPair(tb)
	client, server := tlsPair(tb)
	r := &relayRig{feed: batchedWriter{client}, drain: drain, pool: NewPool(), done: make(chan error, 1)}
	go func() {
		_, err := Pipe(TCP(member), server, r.pool)
		r.done <- err
	}()
	return r
}

// batchedWriter writes to a TLS endpoint through a batch of its Socket.
type batchedWriter struct{ ep Endpoint }

func (w batchedWriter) Write(p []byte) (int, error) {
	if len(p) <= BufferSize {
		return w.ep.Conn.Write(p)
	}
	buf := make([]byte, len(p)+len(p)/BufferSize*64+64)
	w.ep.Socket.BeginBatch(buf)
	n, err := w.ep.Conn.Write(p)
	if ferr := w.ep.Socket.EndBatch(); err == nil {
		err = ferr
	}
	return n, err
}

// move sends chunks chunks of size bytes through the rig and waits until
// at least wantOut bytes came out (raw TLS bytes are a little more than
// the plaintext).
func (r *relayRig) move(tb testing.TB, chunk []byte, chunks int, wantOut int64) {
	got := make(chan int64, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var n int64
		for n < wantOut {
			m, err := r.drain.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		got <- n
	}()
	for range chunks {
		if _, err := r.feed.Write(chunk); err != nil {
			tb.Fatalf("feed: %v", err)
		}
	}
	if n := <-got; n < wantOut {
		tb.Fatalf("relay delivered %d bytes, want at least %d", n, wantOut)
	}
}

func benchmarkRelay(b *testing.B, rig func(testing.TB) *relayRig) {
	r := rig(b)
	chunk := make([]byte, BufferSize)
	r.move(b, chunk, 64, 64*BufferSize) // warm up: pools, TCP windows
	b.SetBytes(BufferSize)
	b.ReportAllocs()
	b.ResetTimer()
	r.move(b, chunk, b.N, int64(b.N)*BufferSize)
}

// BenchmarkRelayTCPToTLS is the member → peer direction: 16 KiB chunks
// read from a socket and sealed into TLS records.
func BenchmarkRelayTCPToTLS(b *testing.B) { benchmarkRelay(b, tcpToTLS) }

// BenchmarkRelayTLSToTCP is the peer → member direction; the feeder's
// tls.Conn.Write allocates nothing, crypto/tls's Read about 0.5 times
// (16 B) per record, which -benchmem rounds down to "0 allocs/op".
func BenchmarkRelayTLSToTCP(b *testing.B) { benchmarkRelay(b, tlsToTCP) }

// BenchmarkRelayPingPong is one 256-byte request and its echo through
// both sidecars' relays (member → TLS → member and back): the latency path
// of group messages, all four relay legs.
func BenchmarkRelayPingPong(b *testing.B) {
	pingPong := echoThroughLink(b)
	b.ReportAllocs()
	b.ResetTimer()
	pingPong(b, b.N)
}

// echoThroughLink runs the four relay legs of a link between a member and
// an echo service, and returns a function that sends n 256-byte messages
// from the member, one at a time, each after the echo of the last.
func echoThroughLink(tb testing.TB) func(tb testing.TB, n int) {
	memberFar, member := tcpPair(tb)
	client, server := tlsPair(tb)
	service, serviceFar := tcpPair(tb)
	pool := NewPool()
	memberEnd := TCP(member)
	serviceEnd := TCP(service)
	for _, leg := range [][2]Endpoint{{client, memberEnd}, {memberEnd, client}, {serviceEnd, server}, {server, serviceEnd}} {
		go func() { _, _ = Pipe(leg[0], leg[1], pool) }() // ends when the test's sockets close
	}
	go func() { _, _ = io.Copy(serviceFar, serviceFar) }() // the echo service
	msg := make([]byte, 256)
	got := make([]byte, 256)
	return func(tb testing.TB, n int) {
		for range n {
			if _, err := memberFar.Write(msg); err != nil {
				tb.Fatal(err)
			}
			if _, err := io.ReadFull(memberFar, got); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// TestIdleLinkHoldsNoBuffer runs both relay directions, moves a message
// each way, and checks that once the link is idle no pooled buffer is
// out: an idle link costs no relay memory.
func TestIdleLinkHoldsNoBuffer(t *testing.T) {
	member, memberFar := tcpPair(t)
	client, server := tlsPair(t)
	peerFar, _ := server.Conn.(*tls.Conn)
	pool := countingPool()
	memberEnd := TCP(member)
	done := make(chan error, 2)
	go func() { _, err := Pipe(client, memberEnd, pool); done <- err }()
	go func() { _, err := Pipe(memberEnd, client, pool); done <- err }()

	for round := range 3 {
		msg := []byte("ping from the member")
		if _, err := memberFar.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(peerFar, got); err != nil {
			t.Fatalf("round %d: peer read: %v", round, err)
		}
		if _, err := peerFar.Write(got); err != nil {
			t.Fatal(err)
		}
		if err := memberFar.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(memberFar, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round %d: member read %q, %v", round, got, err)
		}
		waitIdle(t, pool)
	}
	memberFar.Close()
	peerFar.Close()
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("relay did not end after both far ends closed")
		}
	}
}

// countingPool returns a Pool that counts the buffers out of it.
func countingPool() *Pool {
	p := NewPool()
	p.inUse = new(atomic.Int64)
	return p
}

// waitIdle waits (up to 2 s) for every buffer to be back in the pool,
// which must come from countingPool.
func waitIdle(t *testing.T, pool *Pool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for pool.inUse.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle link still holds %d relay buffers", pool.inUse.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRelayDeliversRecordsReadAhead covers crypto/tls's read-ahead: when
// the reader of HELLO or ACCEPT already pulled the next records off the
// socket, the relay must deliver them without waiting for more bytes.
func TestRelayDeliversRecordsReadAhead(t *testing.T) {
	client, server := tlsPair(t)
	member, memberFar := tcpPair(t)
	cc := client.Conn.(*tls.Conn)
	if _, err := cc.Write([]byte("HELLO")); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Write([]byte("member bytes right behind")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // both records in the socket
	hello := make([]byte, 5)
	if _, err := io.ReadFull(server.Conn, hello); err != nil || string(hello) != "HELLO" {
		t.Fatalf("read HELLO: %q, %v", hello, err)
	}
	// The second record now sits in crypto/tls's buffer, not the socket.
	pool := NewPool()
	done := make(chan error, 1)
	go func() { _, err := Pipe(TCP(member), server, pool); done <- err }()
	want := "member bytes right behind"
	got := make([]byte, len(want))
	if err := memberFar.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(memberFar, got); err != nil || string(got) != want {
		t.Fatalf("read-ahead record: got %q, %v; the relay waited on an empty socket", got, err)
	}
	cc.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not end after the TLS peer closed")
	}
}
