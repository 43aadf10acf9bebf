package transport

import (
	"context"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/certs/devpki"
)

// pki is a CA with files on disk for the members of a test group.
type pki struct {
	t   testing.TB
	dir string
	ca  *devpki.CA
}

func newPKI(t testing.TB, cn string) *pki {
	t.Helper()
	ca, err := devpki.NewRootCA(cn)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), ca: ca}
	p.write("ca.pem", ca.CertPEM)
	return p
}

func (p *pki) write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// leaf issues a certificate and returns its cert and key paths.
func (p *pki) leaf(file string, tmpl devpki.LeafTemplate) (certPath, keyPath string, leaf *devpki.Leaf) {
	p.t.Helper()
	l, err := p.ca.Issue(tmpl)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(file+".pem", l.ChainPEM), p.write(file+"-key.pem", l.KeyPEM), l
}

// member issues a member certificate naming name.
func (p *pki) member(name string) (string, string, *devpki.Leaf) {
	return p.leaf(name, devpki.LeafTemplate{CommonName: name, DNSNames: []string{name}})
}

func (p *pki) crl(file string, revoked ...*big.Int) string {
	p.t.Helper()
	data, err := p.ca.CRL(revoked, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(file, data)
}

func store(t testing.TB, src certs.Source) *certs.Store {
	t.Helper()
	s, err := certs.NewStore("test", src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memberPolicies returns the group channel's policies in mode for mysql-1
// (the acceptor in these tests) and mysql-2, with certificates from one
// test CA, and the CA.
func memberPolicies(t *testing.T, mode Mode) (server, client *Policy, ca *pki) {
	t.Helper()
	p := newPKI(t, "group CA")
	c1, k1, _ := p.member("mysql-1")
	c2, k2, _ := p.member("mysql-2")
	caFile := filepath.Join(p.dir, "ca.pem")
	server = &Policy{Channel: "group", Mode: mode, Creds: store(t, certs.Source{CA: caFile, Cert: c1, Key: k1})}
	client = &Policy{Channel: "group", Mode: mode, Creds: store(t, certs.Source{CA: caFile, Cert: c2, Key: k2})}
	return server, client, p
}

// members of the test group and their identities.
var testMembers = map[string]string{"mysql-1": "mysql-1", "mysql-2": "mysql-2", "mysql-3": "mysql-3"}

// acceptResult is what the accepting side saw of one link.
type acceptResult struct {
	link *Link
	err  error
}

// startAcceptor serves links for member mysql-1 on 127.0.0.1; each
// accepted link is answered ACCEPT and echoed.
func startAcceptor(t testing.TB, policies ...*Policy) (string, <-chan acceptResult) {
	t.Helper()
	return startAcceptorConnecting(t, func(context.Context, Hello) error { return nil }, policies...)
}

// startAcceptorConnecting is startAcceptor with connect standing in for
// the member's service.
func startAcceptorConnecting(t testing.TB, connect ConnectFunc, policies ...*Policy) (string, <-chan acceptResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAcceptor("mysql-1", policies, testMembers, LinkOptions{HandshakeTimeout: 5 * time.Second})
	results := make(chan acceptResult, 16)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			link, err := a.Serve(context.Background(), c.(*net.TCPConn), connect)
			select {
			case results <- acceptResult{link, err}:
			default: // nobody reads them (a benchmark): drop
			}
			if err != nil {
				continue
			}
			go func() {
				defer link.Close()
				io.Copy(link.Conn, link.Conn)
			}()
		}
	}()
	return ln.Addr().String(), results
}

// dial opens a link as member from and does one echo round trip. It
// returns the dialer-side error, if any.
func dial(t *testing.T, p *Policy, from, addr string) error {
	t.Helper()
	d := NewDialer(p, from, Peer{Name: "mysql-1", Address: addr, Identity: "mysql-1"}, LinkOptions{HandshakeTimeout: 5 * time.Second})
	link, err := d.Dial(context.Background())
	if err != nil {
		return err
	}
	defer link.Close()
	if _, err := link.Conn.Write([]byte("ping")); err != nil {
		return err
	}
	if err := link.AwaitAccept(); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(link.Conn, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		t.Fatalf("echo %q", buf)
	}
	return nil
}

func acceptErr(t *testing.T, results <-chan acceptResult) error {
	t.Helper()
	select {
	case r := <-results:
		return r.err
	case <-time.After(5 * time.Second):
		t.Fatal("acceptor saw no link")
		return nil
	}
}

func mustContain(t *testing.T, side string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", side, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %q does not contain %q", side, err, want)
	}
}

// TestLinkAccepted: a good VERIFY_IDENTITY link carries bytes, and the
// accepting side learns the peer's HELLO and certificates.
func TestLinkAccepted(t *testing.T) {
	p := newPKI(t, "group CA")
	c1, k1, _ := p.member("mysql-1")
	c2, k2, _ := p.member("mysql-2")
	ca := filepath.Join(p.dir, "ca.pem")
	crl := p.crl("crl.pem")
	server := &Policy{Channel: "group", Mode: VerifyIdentity, Creds: store(t, certs.Source{CA: ca, Cert: c1, Key: k1, CRL: crl})}
	client := &Policy{Channel: "group", Mode: VerifyIdentity, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2, CRL: crl})}
	addr, results := startAcceptor(t, server)
	if err := dial(t, client, "mysql-2", addr); err != nil {
		t.Fatal(err)
	}
	r := <-results
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.link.Hello().From != "mysql-2" || r.link.Hello().Channel != "group" {
		t.Errorf("HELLO %+v", r.link.Hello())
	}
	if len(r.link.PeerCertificates()) == 0 || r.link.PeerCertificates()[0].Subject.CommonName != "mysql-2" {
		t.Errorf("peer certificates not kept")
	}
	if r.link.TLS().NegotiatedProtocol != "gw1/group" {
		t.Errorf("ALPN %q", r.link.TLS().NegotiatedProtocol)
	}
}

// TestMemberUnavailable: when the accepting member's service cannot be
// reached, connect's error goes back to the dialer as the refusal's
// reason, and both sides call it "unavailable".
func TestMemberUnavailable(t *testing.T) {
	server, client, _ := memberPolicies(t, VerifyCA)
	const reason = "member mysql-1's service for channel group at 127.0.0.1:9 is not reachable: connection refused"
	var asked Hello
	addr, results := startAcceptorConnecting(t, func(_ context.Context, h Hello) error {
		asked = h
		return errors.New(reason)
	}, server)
	derr := dial(t, client, "mysql-2", addr)
	mustContain(t, "dialer", derr, "refused by peer (unavailable")
	mustContain(t, "dialer", derr, reason)
	err := acceptErr(t, results)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Code != RefuseUnavailable || refused.Reason != reason || refused.Peer != "mysql-2" {
		t.Fatalf("acceptor: %v, want a RefusedError unavailable from mysql-2 with connect's reason", err)
	}
	if asked.From != "mysql-2" || asked.Channel != "group" {
		t.Errorf("connect was asked for %+v", asked)
	}
}

// TestLinkRefusals: every way a link can be refused, with the reason each
// side reports.
func TestLinkRefusals(t *testing.T) {
	group := newPKI(t, "group CA")
	other := newPKI(t, "someone else's CA")
	ca := filepath.Join(group.dir, "ca.pem")
	c1, k1, _ := group.member("mysql-1")
	c2, k2, leaf2 := group.member("mysql-2")
	oc2, ok2, _ := other.member("mysql-2")
	ec2, ek2, _ := group.leaf("expired", devpki.LeafTemplate{CommonName: "mysql-2", DNSNames: []string{"mysql-2"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	wc2, wk2, _ := group.member("mysql-9")
	emptyCRL := group.crl("crl.pem")
	expiredData, err := group.ca.CRL(nil, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expiredCRL := group.write("expired-crl.pem", expiredData)
	revokedCRL := group.crl("revoked-crl.pem", leaf2.Cert.SerialNumber)
	// A CA file holding both CAs, with a CRL for only the group CA.
	bothCAs := group.write("both.pem", append(append([]byte{}, group.ca.CertPEM...), other.ca.CertPEM...))

	serverPolicy := func(mode Mode, src certs.Source) *Policy {
		return &Policy{Channel: "group", Mode: mode, Creds: store(t, src)}
	}
	good := certs.Source{CA: ca, Cert: c1, Key: k1, CRL: emptyCRL}

	tests := []struct {
		name       string
		server     *Policy
		client     *Policy
		from       string
		dialerWant string // in the dialing side's error
		serverWant string // in the accepting side's error
	}{
		{
			name:       "no client certificate",
			server:     serverPolicy(VerifyCA, good),
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca})},
			dialerWant: "certificate required",
			serverWant: "didn't provide a certificate",
		},
		{
			name:       "certificate from another CA",
			server:     serverPolicy(VerifyCA, good),
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca, Cert: oc2, Key: ok2})},
			dialerWant: "bad certificate",
			serverWant: "unknown authority",
		},
		{
			name:       "expired certificate",
			server:     serverPolicy(VerifyCA, good),
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca, Cert: ec2, Key: ek2})},
			dialerWant: "bad certificate",
			serverWant: "expired",
		},
		{
			name:       "revoked certificate",
			server:     serverPolicy(VerifyCA, certs.Source{CA: ca, Cert: c1, Key: k1, CRL: revokedCRL}),
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			dialerWant: "bad certificate",
			serverWant: "is revoked",
		},
		{
			name:       "no CRL for the client's CA",
			server:     serverPolicy(VerifyCA, certs.Source{CA: bothCAs, Cert: c1, Key: k1, CRL: emptyCRL}),
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: bothCAs, Cert: oc2, Key: ok2})},
			dialerWant: "bad certificate",
			serverWant: "unable to get certificate CRL",
		},
		{
			name:       "expired CRL",
			server:     serverPolicy(VerifyCA, certs.Source{CA: ca, Cert: c1, Key: k1, CRL: expiredCRL}),
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			dialerWant: "bad certificate",
			serverWant: "CRL has expired",
		},
		{
			name:       "certificate names no member",
			server:     serverPolicy(VerifyIdentity, good),
			client:     &Policy{Channel: "group", Mode: VerifyIdentity, Creds: store(t, certs.Source{CA: ca, Cert: wc2, Key: wk2})},
			dialerWant: "bad certificate",
			serverWant: "names no member of the group",
		},
		{
			name:       "member's certificate says HELLO as another member",
			server:     serverPolicy(VerifyIdentity, good),
			client:     &Policy{Channel: "group", Mode: VerifyIdentity, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			from:       "mysql-3",
			dialerWant: `HELLO says member mysql-3, but the client certificate CN=mysql-2`,
			serverWant: `does not name "mysql-3"`,
		},
		{
			name:       "plaintext dialer at a TLS listener",
			server:     serverPolicy(VerifyIdentity, good),
			client:     &Policy{Channel: "group", Mode: Disabled},
			dialerWant: "peer mysql-2 runs DISABLED on channel group, this listener requires TLS (VERIFY_IDENTITY)",
			serverWant: "requires TLS",
		},
		{
			name:       "TLS dialer at a plaintext listener",
			server:     &Policy{Channel: "group", Mode: Disabled},
			client:     &Policy{Channel: "group", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			dialerWant: "peer runs DISABLED",
			serverWant: "started a TLS handshake",
		},
		{
			name:       "unknown channel",
			server:     serverPolicy(VerifyCA, good),
			client:     &Policy{Channel: "backup", Mode: VerifyCA, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			dialerWant: `unknown channel "backup" (this member serves group)`,
			serverWant: "unknown channel",
		},
		{
			name:       "ssl_mode mismatch",
			server:     serverPolicy(VerifyIdentity, good),
			client:     &Policy{Channel: "group", Mode: Required, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			dialerWant: "peer mysql-2 runs REQUIRED on channel group, this member runs VERIFY_IDENTITY",
			serverWant: "runs REQUIRED",
		},
		{
			name:       "dialer checks the acceptor's identity",
			server:     serverPolicy(VerifyIdentity, certs.Source{CA: ca, Cert: wc2, Key: wk2}),
			client:     &Policy{Channel: "group", Mode: VerifyIdentity, Creds: store(t, certs.Source{CA: ca, Cert: c2, Key: k2})},
			dialerWant: `does not name "mysql-1"`,
			serverWant: "bad certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := startAcceptor(t, tt.server)
			from := tt.from
			if from == "" {
				from = "mysql-2"
			}
			err := dial(t, tt.client, from, addr)
			mustContain(t, "dialer", err, tt.dialerWant)
			mustContain(t, "acceptor", acceptErr(t, results), tt.serverWant)
		})
	}
}

// TestRefuseIsAnError: a REFUSE reaches the dialer as a Refuse value.
func TestRefuseIsAnError(t *testing.T) {
	addr, _ := startAcceptor(t, &Policy{Channel: "group", Mode: Disabled})
	err := dial(t, &Policy{Channel: "group", Mode: Disabled}, "nobody", addr)
	var r Refuse
	if !errors.As(err, &r) || r.Code != RefuseUnknownMember {
		t.Fatalf("got %v, want an unknown-member Refuse", err)
	}
}

// TestProbe: a PROBE passes the same checks as a link and is answered
// without connecting the member; a probe that a link would fail fails with
// the same refusal.
func TestProbe(t *testing.T) {
	server, client, _ := memberPolicies(t, VerifyIdentity)
	addr, results := startAcceptorConnecting(t, func(context.Context, Hello) error {
		t.Error("a probe connected the member")
		return nil
	}, server)
	peer := Peer{Name: "mysql-1", Address: addr, Identity: "mysql-1"}
	setup, leaf, err := NewDialer(client, "mysql-2", peer, LinkOptions{}).Probe(context.Background())
	if err != nil || setup <= 0 || leaf == nil || leaf.Subject.CommonName != "mysql-1" {
		t.Fatalf("probe: %v, setup %v, peer %v", err, setup, leaf)
	}
	if err := acceptErr(t, results); !errors.Is(err, ErrProbeAnswered) {
		t.Fatalf("acceptor: %v, want ErrProbeAnswered", err)
	}
	other := &Policy{Channel: "group", Mode: VerifyCA, Creds: client.Creds}
	_, _, err = NewDialer(other, "mysql-2", peer, LinkOptions{}).Probe(context.Background())
	mustContain(t, "dialer", err, "mode mismatch")
	acceptErr(t, results)
}
