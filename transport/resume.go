package transport

import (
	"bytes"
	"crypto/tls"
)

// TLS sessions are resumed between sidecars (a resumed handshake skips the
// signatures and chain building), but never across a change of key
// material: a session remembers the certificates of the handshake that
// made it, so after a rotation the next handshake must be a full one that
// presents the new certificate. Both sides tie their sessions to the digest
// of the snapshot in force when the session was made.

// snapshotSessionCache is a client session cache whose entries belong to
// one snapshot of this member's key material.
type snapshotSessionCache struct {
	inner  tls.ClientSessionCache
	policy *Policy
}

func (c *snapshotSessionCache) key(sessionKey string) string {
	d := c.policy.Creds.Current().Digest
	return sessionKey + "/" + string(d[:8])
}

// Get returns the session cached for sessionKey under the current snapshot.
func (c *snapshotSessionCache) Get(sessionKey string) (*tls.ClientSessionState, bool) {
	return c.inner.Get(c.key(sessionKey))
}

// Put caches a session under the current snapshot.
func (c *snapshotSessionCache) Put(sessionKey string, cs *tls.ClientSessionState) {
	c.inner.Put(c.key(sessionKey), cs)
}

// bindTicketsToSnapshot makes cfg's session tickets carry the digest of the
// snapshot that issued them and refuses to resume (falling back to a full
// handshake) a ticket from an older snapshot.
func (p *Policy) bindTicketsToSnapshot(cfg *tls.Config) {
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		d := p.Creds.Current().Digest
		ss.Extra = append(ss.Extra, d[:])
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		d := p.Creds.Current().Digest
		if len(ss.Extra) == 0 || !bytes.Equal(ss.Extra[len(ss.Extra)-1], d[:]) {
			return nil, nil // made under other key material: full handshake
		}
		return ss, nil
	}
}
