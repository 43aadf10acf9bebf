package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Acceptor answers links that other members' sidecars dial to this member.
// One Acceptor serves every channel on the member's inbound listener: the
// first byte tells TLS (a ClientHello) from a plaintext HELLO, and for TLS
// the ALPN name picks the channel's credentials.
type Acceptor struct {
	member     string
	policies   map[string]*Policy
	identities map[string]string // member name → identity
	timeout    time.Duration     // handshake and HELLO
	peer       time.Duration     // dead-peer detection on link sockets
	tls        *tls.Config       // nil when every channel is DISABLED
}

// NewAcceptor returns an Acceptor for member. members maps every member's
// name (this one included) to the identity its certificate must carry.
// opts.HandshakeTimeout bounds the handshake and HELLO; opts.PeerTimeout
// tunes dead-peer detection (DialTimeout is not used).
func NewAcceptor(member string, policies []*Policy, members map[string]string, opts LinkOptions) *Acceptor {
	a := &Acceptor{
		member:     member,
		policies:   make(map[string]*Policy, len(policies)),
		identities: members,
		timeout:    opts.handshakeTimeout(),
		peer:       opts.peerTimeout(),
	}
	ids := make([]string, 0, len(members))
	for name, id := range members {
		if name != member {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	configs := make(map[string]*SnapshotConfigs)
	var first *SnapshotConfigs // the TLS channel that sorts first
	sorted := slices.SortedFunc(slices.Values(policies), func(x, y *Policy) int { return strings.Compare(x.Channel, y.Channel) })
	for _, p := range sorted {
		a.policies[p.Channel] = p
		if p.handshakeMode().UsesTLS() {
			configs[ALPN(p.Channel)] = p.ServerConfigs(ids)
			if first == nil {
				first = configs[ALPN(p.Channel)]
			}
		}
	}
	if first != nil {
		a.tls = &tls.Config{
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				for _, proto := range hello.SupportedProtos {
					if cfgs, ok := configs[proto]; ok {
						return cfgs.Current(), nil
					}
				}
				// An unknown channel: finish the handshake with the first
				// TLS channel's policy so the refusal can be said in
				// words once HELLO names the channel. Only groupwire's
				// own protocols are answered: a client offering others
				// (h2, http/1.1, ...) gets TLS's no_application_protocol
				// alert.
				cfg := first.Current().Clone()
				cfg.NextProtos = groupwireProtos(hello.SupportedProtos, cfg.NextProtos)
				return cfg, nil
			},
		}
	}
	return a
}

// groupwireProtos returns the gw1/ protocols among offered, or fallback
// when there are none (which no ALPN-speaking client then matches).
func groupwireProtos(offered, fallback []string) []string {
	var out []string
	for _, p := range offered {
		if strings.HasPrefix(p, ALPNPrefix) {
			out = append(out, p)
		}
	}
	if out == nil {
		return fallback
	}
	return out
}

// Channels returns the channel names this Acceptor serves, sorted.
func (a *Acceptor) Channels() []string {
	names := make([]string, 0, len(a.policies))
	for name := range a.policies {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// RefusedError is returned by Serve when this side refused the link; the
// refusal has been sent to the dialer.
type RefusedError struct {
	Refuse
	Peer string // the dialing member named in HELLO, if it got that far
	// Err is the ConnectFunc's error when the refusal came from it.
	Err error
}

// Unwrap returns the ConnectFunc's error, if the refusal came from it.
func (e *RefusedError) Unwrap() error { return e.Err }

func (e *RefusedError) Error() string {
	if e.Peer != "" {
		return fmt.Sprintf("refused link from %s: %s", e.Peer, e.Reason)
	}
	return "refused link: " + e.Reason
}

// ErrProbeAnswered is what Serve returns after answering a PROBE: the link
// passed every check and was closed without reaching the member.
var ErrProbeAnswered = errors.New("probe answered")

// ConnectFunc opens this member's service for a link whose HELLO passed
// every check. Its error is sent to the dialer as a refusal (the member is
// unavailable), so it should say what was unreachable and why.
type ConnectFunc func(ctx context.Context, h Hello) error

// Serve runs the whole inbound exchange on a freshly accepted connection:
// it tells TLS from plaintext, completes the handshake, reads and checks
// HELLO, calls connect, and answers ACCEPT, or REFUSE with the reason. On
// success the link is a raw byte stream. On failure the connection is
// closed and a *RefusedError means the dialer was told why; if connect had
// succeeded, the caller closes what it opened.
func (a *Acceptor) Serve(ctx context.Context, raw *net.TCPConn, connect ConnectFunc) (*Link, error) {
	link, policy, err := a.accept(ctx, raw)
	if err != nil {
		lingerClose(raw)
		return nil, err
	}
	if link.hello.Probe {
		err := a.answer(link, Refuse{})
		link.closeClean()
		return nil, errors.Join(ErrProbeAnswered, err)
	}
	if err := connect(ctx, link.hello); err != nil {
		r := Refuse{Code: RefuseUnavailable, Mode: policy.Mode, Reason: err.Error()}
		_ = a.answer(link, r)
		return nil, &RefusedError{Refuse: r, Peer: link.hello.From, Err: err}
	}
	if err := a.answer(link, Refuse{}); err != nil {
		link.Close()
		return nil, err
	}
	return link, nil
}

// lingerTimeout bounds lingerClose.
const lingerTimeout = 500 * time.Millisecond

// lingerClose closes a refused connection so that the dialer reads the
// refusal or TLS alert: closing a socket with unread input (the dialer
// pipelines HELLO and member bytes) makes the kernel answer with a reset,
// which can destroy the answer before the dialer reads it. So send FIN
// first and read what the dialer still sends, for a short while.
func lingerClose(raw *net.TCPConn) {
	defer raw.Close()
	if raw.CloseWrite() != nil {
		return
	}
	_ = raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(raw, 1<<20))
}

// accept runs the handshake and reads and checks HELLO; it returns the
// link, the channel's policy, or the refusal already sent.
func (a *Acceptor) accept(ctx context.Context, raw *net.TCPConn) (*Link, *Policy, error) {
	deadline := time.Now().Add(a.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := tuneLinkSocket(raw, a.peer); err != nil {
		return nil, nil, err
	}
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, nil, err
	}
	first, err := peekByte(raw)
	if err != nil {
		return nil, nil, failed(stageFirstByte, fmt.Errorf("read first byte: %w", err))
	}
	link := &Link{Raw: raw, Conn: raw}
	switch {
	case first == 0x16: // TLS handshake record
		if a.tls == nil {
			return nil, nil, a.refuse(raw, "", Refuse{Code: RefuseModeMismatch, Mode: Disabled,
				Reason: "this member runs DISABLED on every channel, but the peer started a TLS handshake"})
		}
		link.sock = NewSocket(raw)
		tc := tls.Server(link.sock, a.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, failed(stageTLS, fmt.Errorf("TLS handshake: %w", err))
		}
		cs := tc.ConnectionState()
		link.Conn, link.tls, link.peer = tc, &cs, cs.PeerCertificates
	case first == 'G':
	default:
		return nil, nil, &FailedError{Reason: ReasonNotGroupwire, Err: fmt.Errorf("not a groupwire peer: first byte 0x%02x", first)}
	}
	typ, body, err := ReadFrame(link.Conn)
	if err != nil {
		return nil, nil, failed(stageHello, fmt.Errorf("read HELLO: %w", err))
	}
	if typ != FrameHello && typ != FrameProbe {
		return nil, nil, a.refuse(link.Conn, "", Refuse{Code: RefuseBadHello, Reason: fmt.Sprintf("expected HELLO, got frame type %d", typ)})
	}
	hello, err := ParseHello(body)
	if err != nil {
		return nil, nil, a.refuse(link.Conn, "", Refuse{Code: RefuseBadHello, Reason: err.Error()})
	}
	hello.Probe = typ == FrameProbe
	link.hello = hello
	p, r, ok := a.check(link)
	if !ok {
		return nil, nil, a.refuse(link.Conn, hello.From, r)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	return link, p, nil
}

// check applies the HELLO rules; it returns the channel's policy, or the
// refusal to send.
func (a *Acceptor) check(link *Link) (*Policy, Refuse, bool) {
	h := link.hello
	p, ok := a.policies[h.Channel]
	if !ok {
		return nil, Refuse{Code: RefuseUnknownChannel, Reason: fmt.Sprintf("unknown channel %q (this member serves %s)", h.Channel, strings.Join(a.Channels(), ", "))}, false
	}
	if r, ok := a.checkMember(link, p); !ok {
		return nil, r, false
	}
	return p, Refuse{}, true
}

// checkMember applies the rules of the channel's policy and of membership
// to a HELLO.
func (a *Acceptor) checkMember(link *Link, p *Policy) (Refuse, bool) {
	h := link.hello
	if link.tls != nil && link.tls.NegotiatedProtocol != ALPN(h.Channel) {
		return Refuse{Code: RefuseBadHello, Mode: p.Mode, Reason: fmt.Sprintf("HELLO names channel %s but the TLS handshake was for %q", h.Channel, link.tls.NegotiatedProtocol)}, false
	}
	if r, ok := checkMode(link, p); !ok {
		return r, false
	}
	identity, ok := a.identities[h.From]
	if !ok || h.From == a.member {
		return Refuse{Code: RefuseUnknownMember, Mode: p.Mode, Reason: fmt.Sprintf("%q is not a peer member of this group", h.From)}, false
	}
	if h.To != a.member {
		return Refuse{Code: RefuseWrongMember, Mode: p.Mode, Reason: fmt.Sprintf("this is member %s, not %s", a.member, h.To)}, false
	}
	if h.Mode.VerifiesChain() && !p.handshakeMode().VerifiesChain() {
		// The handshake was checked at a weaker accepted mode: check the
		// chain at the mode HELLO names, so the link is what it says.
		if _, err := p.verifyChain(h.Mode, tls.ConnectionState{PeerCertificates: link.peer}, x509.ExtKeyUsageClientAuth); err != nil {
			return Refuse{Code: RefuseModeMismatch, Mode: p.Mode, Reason: fmt.Sprintf("HELLO says %s, but: %v", h.Mode, err)}, false
		}
	}
	if h.Mode.VerifiesIdentity() {
		leaf := link.peer[0]
		if !NameMatches(leaf, identity) {
			return Refuse{Code: RefuseIdentity, Mode: p.Mode, Reason: fmt.Sprintf("HELLO says member %s, but the client certificate %s does not name %q", h.From, certName(leaf), identity)}, false
		}
	}
	return Refuse{}, true
}

// checkMode checks HELLO's mode against the modes the channel accepts,
// and that the link runs what the mode says (TLS or plaintext).
func checkMode(link *Link, p *Policy) (Refuse, bool) {
	h := link.hello
	mismatch := func(format string, args ...any) (Refuse, bool) {
		return Refuse{Code: RefuseModeMismatch, Mode: p.Mode, Reason: fmt.Sprintf(format, args...)}, false
	}
	switch {
	case link.tls == nil && !p.Accepts(Disabled):
		return mismatch("peer %s runs %s on channel %s, this listener requires TLS (%s)", h.From, h.Mode, h.Channel, p.acceptedName())
	case !p.Accepts(h.Mode):
		return mismatch("peer %s runs %s on channel %s, this member runs %s", h.From, h.Mode, h.Channel, p.acceptedName())
	case (link.tls != nil) != h.Mode.UsesTLS():
		return mismatch("peer %s's HELLO says %s on channel %s, but the link does not run what that mode says (TLS: %t)", h.From, h.Mode, h.Channel, link.tls != nil)
	}
	return Refuse{}, true
}

func (a *Acceptor) refuse(c net.Conn, peer string, r Refuse) error {
	// Best effort: the dialer may already be gone.
	_, _ = c.Write(AppendRefuse(nil, r))
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	return &RefusedError{Refuse: r, Peer: peer}
}

// answer sends ACCEPT, or the refusal r when it has a code, on an accepted
// link; a refused link is closed.
func (a *Acceptor) answer(link *Link, r Refuse) error {
	frame := AppendAccept(nil)
	if r.Code != 0 {
		frame = AppendRefuse(nil, r)
	}
	if err := link.Conn.SetWriteDeadline(time.Now().Add(a.timeout)); err != nil {
		return err
	}
	_, err := link.Conn.Write(frame)
	if r.Code != 0 {
		if tc, ok := link.Conn.(*tls.Conn); ok {
			_ = tc.CloseWrite()
		}
		lingerClose(link.Raw)
		return err
	}
	if err != nil {
		return fmt.Errorf("send ACCEPT: %w", err)
	}
	return link.Conn.SetWriteDeadline(time.Time{})
}

// peekByte waits for and returns the first byte of c without consuming
// it, so the raw *net.TCPConn can still be handed to crypto/tls or spliced.
// It honours c's read deadline.
func peekByte(c *net.TCPConn) (byte, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var b [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return b[0], nil
}
