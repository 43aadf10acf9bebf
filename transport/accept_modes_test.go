package transport

import (
	"path/filepath"
	"testing"

	"github.com/groupwire/groupwire/certs"
)

// TestAcceptModes: during a rolling change an acceptor with accept_modes
// takes each listed mode, plaintext included, and checks each in full: a
// peer that says VERIFY_CA over a handshake checked at REQUIRED (the
// weakest TLS mode listed) must still show a chain to the CA, and a mode
// not listed is refused.
func TestAcceptModes(t *testing.T) {
	group := newPKI(t, "group CA")
	other := newPKI(t, "someone else's CA")
	ca := filepath.Join(group.dir, "ca.pem")
	c1, k1, _ := group.member("mysql-1")
	c2, k2, _ := group.member("mysql-2")
	oc2, ok2, _ := other.member("mysql-2")
	server := &Policy{Channel: "group", Mode: VerifyCA, AcceptModes: []Mode{Disabled, Required, VerifyCA},
		Creds: store(t, certs.Source{CA: ca, Cert: c1, Key: k1})}
	if err := server.Validate(); err != nil {
		t.Fatal(err)
	}
	ours := store(t, certs.Source{CA: ca, Cert: c2, Key: k2})
	theirs := store(t, certs.Source{CA: ca, Cert: oc2, Key: ok2})
	for _, c := range []struct {
		name       string
		client     *Policy
		serverWant string // "" when the link must be accepted
	}{
		{"plaintext", &Policy{Channel: "group", Mode: Disabled}, ""},
		{"REQUIRED", &Policy{Channel: "group", Mode: Required, Creds: ours}, ""},
		{"VERIFY_CA", &Policy{Channel: "group", Mode: VerifyCA, Creds: ours}, ""},
		{"REQUIRED with a foreign certificate", &Policy{Channel: "group", Mode: Required, Creds: theirs}, ""},
		{"VERIFY_CA with a foreign certificate", &Policy{Channel: "group", Mode: VerifyCA, Creds: theirs}, "HELLO says VERIFY_CA, but"},
		{"VERIFY_IDENTITY, not listed", &Policy{Channel: "group", Mode: VerifyIdentity, Creds: ours}, "this member runs accept_modes DISABLED, REQUIRED, VERIFY_CA"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, results := startAcceptor(t, server)
			err := dial(t, c.client, "mysql-2", addr)
			serverErr := acceptErr(t, results)
			if c.serverWant == "" {
				if err != nil || serverErr != nil {
					t.Fatalf("refused: dialer %v, acceptor %v", err, serverErr)
				}
				return
			}
			mustContain(t, "acceptor", serverErr, c.serverWant)
			if err == nil {
				t.Fatal("the dialer's link was accepted")
			}
		})
	}
}

// TestAcceptModesValidate: accept_modes must include ssl_mode, and the
// key material must serve the strictest mode listed.
func TestAcceptModesValidate(t *testing.T) {
	group := newPKI(t, "group CA")
	c1, k1, _ := group.member("mysql-1")
	if err := (&Policy{Channel: "group", Mode: Required, AcceptModes: []Mode{Disabled, VerifyCA}}).Validate(); err == nil {
		t.Error("accept_modes without the channel's ssl_mode passed")
	}
	noCA := &Policy{Channel: "group", Mode: Disabled, AcceptModes: []Mode{Disabled, VerifyCA}, Creds: store(t, certs.Source{Cert: c1, Key: k1})}
	if err := noCA.Validate(); err == nil {
		t.Error("VERIFY_CA accepted without a CA passed")
	}
	if w := Weakest([]Mode{VerifyIdentity, Required, VerifyCA}); w != Required {
		t.Errorf("Weakest = %s, want REQUIRED", w)
	}
	if s := Strictest([]Mode{Disabled, VerifyIdentity, Required}); s != VerifyIdentity {
		t.Errorf("Strictest = %s, want VERIFY_IDENTITY", s)
	}
}
