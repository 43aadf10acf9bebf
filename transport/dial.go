package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Peer names a member that a Dialer reaches.
type Peer struct {
	Name     string // member name
	Address  string // host:port of its sidecar; DNS names are resolved on every dial
	Identity string // the name its certificate must carry under VERIFY_IDENTITY
}

// LinkOptions bound the blocking steps of a link on either side and say
// how soon a dead peer is noticed.
type LinkOptions struct {
	DialTimeout      time.Duration // TCP connect; zero means 5s
	HandshakeTimeout time.Duration // TLS handshake, HELLO and ACCEPT; zero means 10s
	// PeerTimeout is how long a silent or unacknowledging peer is
	// tolerated before the link is cut (keepalive and TCP_USER_TIMEOUT);
	// zero means 30s.
	PeerTimeout time.Duration
	// Mark, when not zero, is set on every socket the Dialer opens
	// (SO_MARK, Linux): in drop-in mode the capture rules skip it, so
	// nothing the sidecar dials is captured again.
	Mark uint32
}

// Defaults of LinkOptions, which the cluster file's dial_timeout,
// handshake_timeout and peer_timeout also take.
const (
	DefaultDialTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPeerTimeout      = 30 * time.Second
)

// WithDefaults returns o with every zero or negative field set to its
// default.
func (o LinkOptions) WithDefaults() LinkOptions {
	return LinkOptions{
		DialTimeout:      orDefault(o.DialTimeout, DefaultDialTimeout),
		HandshakeTimeout: orDefault(o.HandshakeTimeout, DefaultHandshakeTimeout),
		PeerTimeout:      orDefault(o.PeerTimeout, DefaultPeerTimeout),
		Mark:             o.Mark,
	}
}

// netDialer is the TCP dialer of a link or probe: the dial timeout, and
// the mark when one is set.
func (o LinkOptions) netDialer() *net.Dialer {
	d := &net.Dialer{Timeout: o.dialTimeout()}
	if o.Mark != 0 {
		d.Control = MarkControl(o.Mark)
	}
	return d
}

func (o LinkOptions) dialTimeout() time.Duration      { return o.WithDefaults().DialTimeout }
func (o LinkOptions) handshakeTimeout() time.Duration { return o.WithDefaults().HandshakeTimeout }
func (o LinkOptions) peerTimeout() time.Duration      { return o.WithDefaults().PeerTimeout }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Dialer opens links from this member to one peer on one channel. It is
// safe for concurrent use; build one per (peer, channel) and keep it, so
// TLS sessions are resumed across links.
type Dialer struct {
	policy *Policy
	peer   Peer
	opts   LinkOptions
	tls    *SnapshotConfigs // nil for DISABLED
	hello  []byte           // the encoded HELLO, the same for every link
	probe  []byte           // the encoded PROBE
	// helloFields is that HELLO as a value, for the links' Hello method.
	helloFields Hello
}

// NewDialer returns a Dialer for links from member from to peer.
func NewDialer(p *Policy, from string, peer Peer, opts LinkOptions) *Dialer {
	hello := Hello{Mode: p.Mode, Channel: p.Channel, From: from, To: peer.Name}
	probe := hello
	probe.Probe = true
	d := &Dialer{policy: p, peer: peer, opts: opts, hello: AppendHello(nil, hello), probe: AppendHello(nil, probe), helloFields: hello}
	if p.Mode.UsesTLS() {
		d.tls = p.ClientConfigs(peer.Identity)
	}
	return d
}

// Dial connects to the peer, completes the TLS handshake (unless DISABLED)
// and sends HELLO. It does not wait for ACCEPT, so the link costs no round
// trip: the caller may write member bytes at once, and must call
// Link.AwaitAccept before it reads, which returns the peer's refusal if
// there was one.
// ctx bounds only the setup, not the link's lifetime.
func (d *Dialer) Dial(ctx context.Context) (*Link, error) {
	c, err := d.opts.netDialer().DialContext(ctx, "tcp", d.peer.Address)
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", d.peer.Name, d.peer.Address, err)
	}
	raw := c.(*net.TCPConn)
	link, err := d.handshake(ctx, raw)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("link to %s at %s (channel %s): %w", d.peer.Name, d.peer.Address, d.policy.Channel, err)
	}
	return link, nil
}

func (d *Dialer) handshake(ctx context.Context, raw *net.TCPConn) (*Link, error) {
	return d.handshakeWith(ctx, raw, d.hello)
}

// handshakeWith sets up a link on raw and sends hello, a HELLO or a PROBE.
func (d *Dialer) handshakeWith(ctx context.Context, raw *net.TCPConn, hello []byte) (*Link, error) {
	if err := tuneLinkSocket(raw, d.opts.peerTimeout()); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(d.opts.handshakeTimeout())
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	link := &Link{Raw: raw, Conn: raw, hello: d.helloFields}
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if d.tls != nil {
		// The replay copy lets a plaintext REFUSE (the peer runs
		// DISABLED) be read in full after crypto/tls has read ahead.
		link.sock = NewSocket(raw)
		rc := NewReplayConn(link.sock)
		tc := tls.Client(rc, d.tls.Current())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, explainHandshakeError(err, rc)
		}
		rc.Forget()
		cs := tc.ConnectionState()
		link.Conn, link.tls, link.peer = tc, &cs, cs.PeerCertificates
	}
	if _, err := link.Conn.Write(hello); err != nil {
		return nil, fmt.Errorf("send HELLO: %w", err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	link.awaitTimeout = d.opts.handshakeTimeout()
	return link, nil
}

// explainHandshakeError turns a plaintext REFUSE that arrived instead of a
// TLS ServerHello (the peer runs DISABLED) into that refusal.
func explainHandshakeError(err error, rc *ReplayConn) error {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.RecordHeader[0] == 'G' {
		typ, body, ferr := ReadFrame(rc.Replay())
		if ferr == nil && typ == FrameRefuse {
			if r, perr := ParseRefuse(body); perr == nil {
				return r
			}
		}
	}
	return fmt.Errorf("TLS handshake: %w", err)
}

// Probe checks the link to the peer the way a link is set up (TCP, the
// channel's TLS policy with both certificates verified, HELLO), but as a
// PROBE: the peer's sidecar answers without connecting its member. It
// returns the link's setup time, and the certificate the peer presented
// (nil under DISABLED).
func (d *Dialer) Probe(ctx context.Context) (time.Duration, *x509.Certificate, error) {
	start := time.Now()
	c, err := d.opts.netDialer().DialContext(ctx, "tcp", d.peer.Address)
	if err != nil {
		return 0, nil, fmt.Errorf("dial %s at %s: %w", d.peer.Name, d.peer.Address, err)
	}
	raw := c.(*net.TCPConn)
	defer raw.Close()
	link, err := d.handshakeWith(ctx, raw, d.probe)
	if err == nil {
		err = link.AwaitAccept()
	}
	if err != nil {
		return 0, nil, err
	}
	var leaf *x509.Certificate
	if pc := link.PeerCertificates(); len(pc) > 0 {
		leaf = pc[0]
	}
	link.closeClean()
	return time.Since(start), leaf, nil
}

// Link is one established link between two sidecars. Conn carries the
// member's bytes: the raw *net.TCPConn under DISABLED (so the kernel can
// splice), a *tls.Conn over Raw otherwise.
type Link struct {
	Conn net.Conn
	Raw  *net.TCPConn

	hello Hello
	tls   *tls.ConnectionState // nil under DISABLED
	peer  []*x509.Certificate  // what the peer presented, leaf first
	sock  *Socket              // the socket under the tls.Conn; nil under DISABLED
	// awaitTimeout bounds the wait for ACCEPT on a dialed link; zero once
	// ACCEPT was read, and on an accepted link.
	awaitTimeout time.Duration
}

// Hello is the link's HELLO: the channel, the mode, and the dialing and
// accepting members.
func (l *Link) Hello() Hello { return l.hello }

// TLS is the handshake's state; nil under DISABLED.
func (l *Link) TLS() *tls.ConnectionState { return l.tls }

// PeerCertificates are the certificates the peer presented, leaf first,
// kept to check the peer again when CAs or CRLs change.
func (l *Link) PeerCertificates() []*x509.Certificate { return l.peer }

// AwaitAccept reads the acceptor's answer on a dialed link. It returns nil
// on ACCEPT and the Refuse (which is an error) on REFUSE. Under TLS 1.3 a
// peer that rejected this side's certificate reports it here, as an alert.
// On an accepted link, or once ACCEPT was read, it returns nil at once.
func (l *Link) AwaitAccept() error {
	if l.awaitTimeout == 0 {
		return nil
	}
	if err := l.Conn.SetReadDeadline(time.Now().Add(l.awaitTimeout)); err != nil {
		return err
	}
	typ, body, err := ReadFrame(l.Conn)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("await ACCEPT: peer closed the link without an answer")
		}
		return fmt.Errorf("await ACCEPT: %w", err)
	}
	switch typ {
	case FrameAccept:
		l.awaitTimeout = 0
		return l.Conn.SetReadDeadline(time.Time{})
	case FrameRefuse:
		r, err := ParseRefuse(body)
		if err != nil {
			return fmt.Errorf("await ACCEPT: %w", err)
		}
		return r
	default:
		return fmt.Errorf("await ACCEPT: unexpected frame type %d", typ)
	}
}

// closeClean ends the link with a TLS close_notify, as a completed stream.
func (l *Link) closeClean() {
	if tc, ok := l.Conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	_ = l.Raw.Close()
}

// Close closes the link's connection.
func (l *Link) Close() error { return l.Conn.Close() }

// Socket is the socket under the link's tls.Conn, which the relay batches
// writes on and reads without waiting; nil under DISABLED.
func (l *Link) Socket() *Socket { return l.sock }
