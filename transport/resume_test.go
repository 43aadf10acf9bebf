package transport

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

// TestSessionResumption: the second link to a peer resumes the TLS
// session (cheaper handshake), and after the acceptor's certificate is
// rotated the next link does a full handshake that presents the new one.
func TestSessionResumption(t *testing.T) {
	server, client, p := memberPolicies(t, VerifyIdentity)
	addr, results := startAcceptor(t, server)
	d := NewDialer(client, "mysql-2", Peer{Name: "mysql-1", Address: addr, Identity: "mysql-1"}, LinkOptions{})

	link := func() (resumed bool, serial string) {
		t.Helper()
		l, err := d.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// The session ticket arrives after the handshake: read ACCEPT.
		if err := l.AwaitAccept(); err != nil {
			t.Fatal(err)
		}
		if r := <-results; r.err != nil {
			t.Fatal(r.err)
		}
		return l.TLS().DidResume, l.PeerCertificates()[0].SerialNumber.Text(16)
	}
	if resumed, _ := link(); resumed {
		t.Fatal("first link resumed a session")
	}
	resumed, oldSerial := link()
	if !resumed {
		t.Fatal("second link did not resume the session")
	}

	leaf := rotateServer(t, p, server)
	resumed, newSerial := link()
	if resumed || newSerial == oldSerial || newSerial != leaf.Cert.SerialNumber.Text(16) {
		t.Fatalf("after rotation: resumed=%v serial %s (old %s, new %s)", resumed, newSerial, oldSerial, leaf.Cert.SerialNumber.Text(16))
	}
	if resumed, _ := link(); !resumed {
		t.Fatal("link after the rotation's full handshake did not resume")
	}
}

// TestStraddlingHandshakeLeavesNoResumableTicket: a handshake that began
// under the old snapshot (it presents the old certificate) and finishes
// after a reload must not leave a ticket that a later handshake resumes:
// that link would carry the old certificate for the ticket's lifetime.
func TestStraddlingHandshakeLeavesNoResumableTicket(t *testing.T) {
	server, client, p := memberPolicies(t, VerifyIdentity)
	serverCfgs := server.ServerConfigs([]string{"mysql-1", "mysql-2"})
	clientCfgs := client.ClientConfigs("mysql-1")

	straddling := serverCfgs.Current() // the handshake starts under the old snapshot...
	leaf := rotateServer(t, p, server)
	// ...and issues its ticket after the reload.
	if resumed, serial := handshakeOnce(t, straddling, clientCfgs.Current()); resumed || serial == leaf.Cert.SerialNumber.Text(16) {
		t.Fatalf("the straddling handshake: resumed %v, serial %s", resumed, serial)
	}
	resumed, serial := handshakeOnce(t, serverCfgs.Current(), clientCfgs.Current())
	if resumed || serial != leaf.Cert.SerialNumber.Text(16) {
		t.Fatalf("the next handshake resumed=%v with serial %s; want a full handshake presenting %s", resumed, serial, leaf.Cert.SerialNumber.Text(16))
	}
}

// rotateServer re-issues mysql-1's certificate over its files and reloads
// the server's store; it returns the new leaf.
func rotateServer(t *testing.T, p *pki, server *Policy) *devpki.Leaf {
	t.Helper()
	_, _, leaf := p.member("mysql-1")
	if changed, err := server.Creds.Reload(); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	return leaf
}

// handshakeOnce runs one TLS handshake over loopback TCP, trades a byte
// (which delivers the session ticket) and returns whether it resumed and
// the serial the server presented.
func handshakeOnce(t *testing.T, serverCfg, clientCfg *tls.Config) (bool, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		sc := tls.Server(c, serverCfg)
		_, err = sc.Write([]byte{1})
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cc := tls.Client(raw, clientCfg)
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := cc.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cs := cc.ConnectionState()
	return cs.DidResume, cs.PeerCertificates[0].SerialNumber.Text(16)
}
