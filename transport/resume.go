package transport

import (
	"bytes"
	"crypto/tls"
	"slices"
	"sync/atomic"

	"github.com/groupwire/groupwire/certs"
)

// TLS sessions are resumed between sidecars (a resumed handshake skips the
// signatures and chain building), but never across a change of key
// material: a session remembers the certificates of the handshake that
// made it, so after a rotation the next handshake must be a full one that
// presents the new certificate.
//
// Each snapshot of a channel's key material therefore gets tls.Configs of
// its own, picked when a handshake starts: the server's config presents
// that snapshot's certificate and binds its tickets to that snapshot's
// digest, and the client's presents that snapshot's certificate and caches
// sessions in a cache of its own. A handshake that began before a reload
// finishes with the old material, and its ticket names the old snapshot, so
// no later link resumes into an old certificate. (Binding to the digest in
// force when the ticket is written, as an earlier version did, let a
// handshake that straddled a reload issue a new-digest ticket for the old
// certificate.)

// SnapshotConfigs hands out the tls.Config of the policy's current
// snapshot, building one when the snapshot changes.
type SnapshotConfigs struct {
	creds *certs.Store
	build func(*certs.Snapshot) *tls.Config
	cur   atomic.Pointer[snapshotConfig]
}

type snapshotConfig struct {
	snap *certs.Snapshot
	cfg  *tls.Config
}

// Current returns the config of the snapshot in force now.
func (s *SnapshotConfigs) Current() *tls.Config {
	snap := s.creds.Current()
	if c := s.cur.Load(); c != nil && c.snap == snap {
		return c.cfg
	}
	c := &snapshotConfig{snap: snap, cfg: s.build(snap)}
	s.cur.Store(c) // two racing builders both serve a correct config
	return c.cfg
}

// ClientConfigs returns the dialing side's TLS configurations for links to
// one peer, one per snapshot. identity is the name the peer's certificate
// must carry under VERIFY_IDENTITY. Each snapshot's configuration has its
// own session cache, so sessions resume only under the material they were
// made with.
func (p *Policy) ClientConfigs(identity string) *SnapshotConfigs {
	return &SnapshotConfigs{creds: p.Creds, build: func(snap *certs.Snapshot) *tls.Config {
		return p.clientConfig(snap, identity, tls.NewLRUClientSessionCache(32))
	}}
}

// ServerConfigs returns the accepting side's TLS configurations for this
// channel, one per snapshot. identities lists the names a client
// certificate may carry under VERIFY_IDENTITY (every configured member's
// identity); which member it is is checked against HELLO after the
// handshake.
func (p *Policy) ServerConfigs(identities []string) *SnapshotConfigs {
	ids := slices.Clone(identities)
	return &SnapshotConfigs{creds: p.Creds, build: func(snap *certs.Snapshot) *tls.Config {
		return p.serverConfig(snap, ids)
	}}
}

// bindTickets makes cfg's session tickets carry digest and refuses to
// resume (falling back to a full handshake) a ticket carrying another one.
func bindTickets(cfg *tls.Config, digest [32]byte) {
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, digest[:])
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		if len(ss.Extra) == 0 || !bytes.Equal(ss.Extra[len(ss.Extra)-1], digest[:]) {
			return nil, nil // made under other key material: full handshake
		}
		return ss, nil
	}
}
