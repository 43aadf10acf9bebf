package certs_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/certs/acmetest"
	"github.com/groupwire/groupwire/transport"
)

// acmeMember is one member whose certificate comes from Pebble: its ACME
// manager, its credential store (ssl_ca: Pebble's root) and its policy.
type acmeMember struct {
	name   string
	acme   *certs.ACME
	store  *certs.Store
	policy *transport.Policy
}

func newACMEMember(t *testing.T, pb *acmetest.Pebble, name, storage string, log zerolog.Logger) *acmeMember {
	t.Helper()
	a, err := certs.NewACME(certs.ACMEConfig{
		Directory:     pb.Directory,
		CARoot:        pb.TLSRoot,
		Email:         "ops@groupwire.test",
		Name:          name,
		Storage:       storage,
		Profile:       pb.Profile,
		HTTPListen:    fmt.Sprintf("127.0.0.1:%d", acmetest.FreePorts(t, 1)[0]),
		ObtainTimeout: 20 * time.Second,
	}, log.With().Str("member", name).Logger())
	if err != nil {
		t.Fatal(err)
	}
	store, err := certs.NewStore("channel group", certs.Source{CA: pb.CARoot})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(store); err != nil {
		t.Fatal(err)
	}
	p := &transport.Policy{Channel: "group", Mode: transport.VerifyIdentity, Creds: store, ServerAuthClients: true}
	return &acmeMember{name: name, acme: a, store: store, policy: p}
}

func (m *acmeMember) serial() *big.Int { return m.store.Current().Cert.Leaf.SerialNumber }

// tlsServer accepts links for one policy over real TCP and TLS, answers
// one byte per link and reports the client certificate's serial. Its
// tls.Config lives as long as the server, so session tickets resume.
type tlsServer struct {
	ln    net.Listener
	peers chan peerResult
	wg    sync.WaitGroup
}

type peerResult struct {
	serial *big.Int
	err    error
}

func startTLSServer(t *testing.T, p *transport.Policy, identities []string) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{ln: ln, peers: make(chan peerResult, 16)}
	cfgs := p.ServerConfigs(identities)
	cfg := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return cfgs.Current(), nil }}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.peers <- serveOne(tls.Server(c, cfg))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func serveOne(c *tls.Conn) peerResult {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		return peerResult{err: err}
	}
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		return peerResult{err: err}
	}
	if _, err := c.Write(b); err != nil {
		return peerResult{err: err}
	}
	return peerResult{serial: c.ConnectionState().PeerCertificates[0].SerialNumber}
}

// link dials the server as client, trading one byte, and returns the
// serial of the server's certificate, whether the session was resumed,
// and the serial the server saw from the client. Links made with the same
// cfgs resume sessions; nil makes a one-off configuration.
func (s *tlsServer) link(t *testing.T, client *acmeMember, serverIdentity string, cfgs *transport.SnapshotConfigs) (serverSerial, clientSerial *big.Int, resumed bool, err error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if cfgs == nil {
		cfgs = client.policy.ClientConfigs(serverIdentity)
	}
	c := tls.Client(raw, cfgs.Current())
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	err = c.Handshake()
	if err == nil {
		_, err = c.Write([]byte{1})
	}
	if err == nil {
		// Under TLS 1.3 a refused client certificate shows at the first read.
		_, err = c.Read(make([]byte, 1))
	}
	var res peerResult
	select {
	case res = <-s.peers:
	case <-time.After(5 * time.Second):
		t.Fatal("server reported nothing within 5s")
	}
	if err == nil {
		err = res.err
	} else if res.err != nil {
		err = fmt.Errorf("client: %w; server: %v", err, res.err)
	}
	if err != nil {
		return nil, nil, false, err
	}
	cs := c.ConnectionState()
	return cs.PeerCertificates[0].SerialNumber, res.serial, cs.DidResume, nil
}

// TestACMELinkWithPebbleCertificates obtains both members' certificates
// from a real Pebble, runs a VERIFY_IDENTITY link between them over real
// TLS, shows that a serverAuth-only ACME certificate needs
// ServerAuthClients in the client role, and that a restart loads the
// certificate from storage instead of asking the CA again.
func TestACMELinkWithPebbleCertificates(t *testing.T) {
	// 30 days: Pebble's ARI window then lies around day 20. For
	// certificates shorter than two days it spans the whole lifetime, and
	// certmagic renews at once on restart when its random time in that
	// window falls before the next renewal check.
	pb := acmetest.Start(t, 30*24*time.Hour)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ctx := context.Background()
	m1 := newACMEMember(t, pb, "mysql-1.gw.test", t.TempDir(), log)
	m2 := newACMEMember(t, pb, "mysql-2.gw.test", t.TempDir(), log)
	for _, m := range []*acmeMember{m1, m2} {
		start := time.Now()
		if err := m.acme.Obtain(ctx); err != nil {
			t.Fatalf("Obtain %s: %v", m.name, err)
		}
		leaf := m.store.Current().Cert.Leaf
		t.Logf("%s: serial %x, valid %s, obtained in %v", m.name, leaf.SerialNumber, leaf.NotAfter.Sub(leaf.NotBefore), time.Since(start))
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != m.name {
			t.Errorf("%s: certificate names %v", m.name, leaf.DNSNames)
		}
		if err := m.policy.Validate(); err != nil {
			t.Fatalf("policy with the ACME certificate: %v", err)
		}
	}
	ids := []string{m1.name, m2.name}
	srv := startTLSServer(t, m2.policy, ids)
	serverSerial, clientSerial, _, err := srv.link(t, m1, m2.name, nil)
	if err != nil {
		t.Fatalf("link mysql-1 → mysql-2: %v", err)
	}
	if serverSerial.Cmp(m2.serial()) != 0 || clientSerial.Cmp(m1.serial()) != 0 {
		t.Errorf("serials seen: server %x (want %x), client %x (want %x)", serverSerial, m2.serial(), clientSerial, m1.serial())
	}
	// The dialer checks the identity: mysql-2's certificate does not name mysql-3.
	if _, _, _, err := srv.link(t, m1, "mysql-3.gw.test", nil); err == nil || !strings.Contains(err.Error(), "does not name") {
		t.Errorf("link to the wrong identity: err %v", err)
	}

	// Pebble's certificates carry serverAuth only: without
	// ServerAuthClients the accepting side refuses them as client
	// certificates, as OpenSSL would.
	strict := *m2.policy
	strict.ServerAuthClients = false
	strictSrv := startTLSServer(t, &strict, ids)
	if _, _, _, err := strictSrv.link(t, m1, m2.name, nil); err == nil || !strings.Contains(err.Error(), "incompatible key usage") {
		t.Errorf("serverAuth-only client certificate without ServerAuthClients: err %v", err)
	}

	// A restart with the same storage presents the same certificate,
	// loaded from storage without a new order.
	again := newACMEMember(t, pb, m1.name, m1.acme.Config().Storage, log)
	if err := again.acme.Obtain(ctx); err != nil {
		t.Fatal(err)
	}
	if again.serial().Cmp(m1.serial()) != 0 {
		t.Errorf("restart obtained serial %x, want the stored %x", again.serial(), m1.serial())
	}
}

// TestACMEObtainFailureNamesDirectory: a CA that cannot be reached fails
// the startup obtain within its deadline, naming the name and directory.
func TestACMEObtainFailureNamesDirectory(t *testing.T) {
	port := acmetest.FreePorts(t, 1)[0] // nothing listens there
	dir := fmt.Sprintf("https://127.0.0.1:%d/dir", port)
	a, err := certs.NewACME(certs.ACMEConfig{Directory: dir, Name: "mysql-1.gw.test", Email: "ops@groupwire.test", Storage: t.TempDir(), ObtainTimeout: 5 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = a.Obtain(context.Background())
	if err == nil || !strings.Contains(err.Error(), "acme: obtain certificate for mysql-1.gw.test from "+dir) {
		t.Fatalf("Obtain: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Obtain took %v with a 5s timeout", d)
	}
	if a.Certificate() != nil {
		t.Error("failed Obtain left a certificate")
	}
}

// TestACMERenewalReachesNextHandshake runs both members' ACME managers
// against Pebble issuing 20-second certificates: each is renewed within
// the test, the store's snapshot changes, and the next handshake (a full
// one, although the client caches sessions) presents the new serials.
// When the managers stop, certmagic's maintenance goroutines are gone.
// It takes up to a minute, so -short skips it.
func TestACMERenewalReachesNextHandshake(t *testing.T) {
	if testing.Short() {
		t.Skip("renewal against Pebble takes up to a minute; run without -short")
	}
	const lifetime = 20 * time.Second
	pb := acmetest.Start(t, lifetime)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	m1 := newACMEMember(t, pb, "mysql-1.gw.test", t.TempDir(), log)
	m2 := newACMEMember(t, pb, "127.0.0.1", t.TempDir(), log) // an IP identity (RFC 8738)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, m := range []*acmeMember{m1, m2} {
		if err := m.acme.Obtain(ctx); err != nil {
			t.Fatalf("Obtain %s: %v", m.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- m.acme.Run(ctx)
		}()
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)

	srv := startTLSServer(t, m2.policy, []string{m1.name, m2.name})
	cache, before := resumedWithinOneSnapshot(t, srv, m1, m2)
	old1, old2, oldDigest := before[0].Cert.Leaf.SerialNumber, before[1].Cert.Leaf.SerialNumber, before[0].Digest

	deadline := time.Now().Add(3 * lifetime)
	for m1.serial().Cmp(old1) == 0 || m2.serial().Cmp(old2) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal within %v: mysql-1 serial %x (was %x), 127.0.0.1 serial %x (was %x)", 3*lifetime, m1.serial(), old1, m2.serial(), old2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("renewed: mysql-1 %x → %x, 127.0.0.1 %x → %x", old1, m1.serial(), old2, m2.serial())
	if m1.store.Current().Digest == oldDigest {
		t.Error("renewal did not change the snapshot's digest")
	}

	serverSerial, clientSerial, resumed, err := srv.link(t, m1, m2.name, cache)
	if err != nil {
		t.Fatalf("link after renewal: %v", err)
	}
	if resumed {
		t.Error("the first link after renewal resumed a session of the old certificate")
	}
	if serverSerial.Cmp(old2) == 0 || clientSerial.Cmp(old1) == 0 {
		t.Errorf("link after renewal presented an old serial: server %x (old %x), client %x (old %x)", serverSerial, old2, clientSerial, old1)
	}

	stop()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	if n := goroutinesIn("certmagic.(*Cache).maintainAssets"); n > 0 {
		t.Errorf("%d certmagic maintenance goroutines left after Run returned", n)
	}
}

// resumedWithinOneSnapshot links client to srv (server's) twice with one
// session cache and checks that the second link resumed. Sessions are kept
// per snapshot, and a 20 s certificate can be renewed within a second of
// being issued (where Pebble's renewal window says so), so a pair of links
// that straddles a renewal proves nothing and is tried again; a pair within
// one snapshot that did not resume fails the test. It returns the cache and
// the two members' snapshots the pair was made in.
func resumedWithinOneSnapshot(t *testing.T, srv *tlsServer, client, server *acmeMember) (*transport.SnapshotConfigs, [2]*certs.Snapshot) {
	t.Helper()
	for range 5 {
		before := [2]*certs.Snapshot{client.store.Current(), server.store.Current()}
		cache := client.policy.ClientConfigs(server.name) // one client session cache per snapshot
		if _, _, _, err := srv.link(t, client, server.name, cache); err != nil {
			t.Fatalf("first link: %v", err)
		}
		_, _, resumed, err := srv.link(t, client, server.name, cache)
		if err != nil {
			t.Fatalf("second link: %v", err)
		}
		same := client.store.Current().Digest == before[0].Digest && server.store.Current().Digest == before[1].Digest
		switch {
		case same && resumed:
			return cache, before
		case same:
			t.Fatal("second link within one snapshot was not resumed (want a resumed session)")
		}
		t.Log("a renewal came between the two links; trying the pair again")
	}
	t.Fatal("five pairs of links each straddled a renewal")
	return nil, [2]*certs.Snapshot{}
}

// goroutinesIn counts goroutines whose stack mentions fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}
