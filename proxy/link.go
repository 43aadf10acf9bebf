package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/proxy/capture"
	"github.com/groupwire/groupwire/proxy/relay"
	"github.com/groupwire/groupwire/transport"
)

// serveOutbound tunnels one connection from this member's service to a
// peer: dial the peer's sidecar, then relay. pending releases the
// connection's place among those waiting for a link.
func (s *Sidecar) serveOutbound(ctx context.Context, member *net.TCPConn, r *outboundRoute, pending func()) {
	defer s.wg.Done()
	releaseLink, ok := s.admit.link(r.Peer, r.Channel)
	if !ok {
		pending()
		s.refuseAtLimit(member, Outbound, "max_links_per_peer", r.Peer)
		return
	}
	s.setMemberSocketOptions(member)
	start := time.Now()
	link, err := r.dialer.Dial(ctx)
	pending()
	if r.goesDirect(err) {
		s.serveDirect(ctx, member, r, releaseLink)
		return
	}
	if err != nil {
		releaseLink()
		s.metrics.links.WithLabelValues(r.Channel, r.Peer, string(Outbound), "failed").Inc()
		_ = member.SetLinger(0) // the member's connection never reached its peer: reset it
		member.Close()
		if s.logRate.allow("link_failed", r.Peer, time.Now()) {
			s.log.Warn().Str("peer", r.Peer).Str("channel", r.Channel).Str("dir", string(Outbound)).Err(err).Msg("link failed")
		}
		return
	}
	s.metrics.linkSetup.Observe(time.Since(start).Seconds())
	s.health.seen(r.Peer, r.Channel, firstCert(link))
	s.startLink(&liveLink{peer: r.Peer, channel: r.Channel, mode: r.mode, direction: Outbound, link: link, member: member, release: releaseLink})
}

// serveInbound answers one link dialed by a peer's sidecar: transport
// runs the exchange and calls back to connect this member's service for
// the channel; then the link is relayed. handshake releases the
// connection's place among those not yet past HELLO.
func (s *Sidecar) serveInbound(ctx context.Context, raw *net.TCPConn, handshake func()) {
	defer s.wg.Done()
	remote := raw.RemoteAddr().String()
	var member *net.TCPConn
	var releaseLink func()
	g := s.current()
	link, err := g.acceptor.Serve(ctx, raw, func(ctx context.Context, h transport.Hello) error {
		handshake() // past HELLO: no longer a handshake in flight
		var ok bool
		if releaseLink, ok = s.admit.link(h.From, h.Channel); !ok {
			return &limitError{limit: "max_links_per_peer", value: g.plan.Limits.Value("max_links_per_peer"), peer: h.From, channel: h.Channel}
		}
		c, err := connectMember(ctx, g, h.Channel, raw.RemoteAddr())
		member = c
		return err
	})
	handshake() // a refusal or a probe never reached connect
	if errors.Is(err, transport.ErrProbeAnswered) {
		return // a peer checked the pair; nothing reached the member
	}
	if err != nil {
		if member != nil {
			member.Close()
		}
		if releaseLink != nil {
			releaseLink()
		}
		s.logRefused(remote, err)
		return
	}
	h := link.Hello()
	s.health.seen(h.From, h.Channel, firstCert(link))
	s.startLink(&liveLink{peer: h.From, channel: h.Channel, mode: h.Mode, direction: Inbound, link: link, member: member, release: releaseLink})
}

// firstCert is the leaf certificate the link's peer presented, or nil.
func firstCert(l *transport.Link) *x509.Certificate {
	if pc := l.PeerCertificates(); len(pc) > 0 {
		return pc[0]
	}
	return nil
}

// limitError refuses a link because a limit is reached; the dialer reads
// it as the refusal's reason.
type limitError struct {
	limit, peer, channel string
	value                int
}

func (e *limitError) Error() string {
	return fmt.Sprintf("limit reached: %s (%d) for peer %s on channel %s", e.limit, e.value, e.peer, e.channel)
}

// connectMember dials this member's service for channel, as generation g
// says. In drop-in mode it dials from the address of the peer whose link
// it delivers (IP_TRANSPARENT; package capture routes the replies back), so
// the member sees its peer's real address.
func connectMember(ctx context.Context, g *generation, channel string, peer net.Addr) (*net.TCPConn, error) {
	target := g.delivery[channel]
	d := net.Dialer{Timeout: g.plan.Link.DialTimeout, KeepAlive: -1} // setMemberSocketOptions sets it
	if pa, ok := peer.(*net.TCPAddr); ok && g.plan.Capture != nil {
		d.LocalAddr, d.Control = &net.TCPAddr{IP: pa.IP}, capture.Transparent
	}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("member %s's service for channel %s at %s is not reachable: %v", g.plan.Member, channel, target, err)
	}
	member := c.(*net.TCPConn)
	setMemberSocketOptions(member, g.plan.Link.PeerTimeout)
	return member, nil
}

// logRefused counts an inbound link that did not get through and logs it
// with its reason, rate-limited per reason and source address.
func (s *Sidecar) logRefused(remote string, err error) {
	reason, peer := refusalReason(err)
	s.metrics.refused.WithLabelValues(string(reason)).Inc()
	if !s.logRate.allow(string(reason), remote, time.Now()) {
		return
	}
	ev := s.log.Warn().Str("remote", remote).Str("dir", string(Inbound)).Str("reason", string(reason)).Err(err)
	if peer != "" {
		ev = ev.Str("peer", peer)
	}
	ev.Msg("link refused")
}

// refusalReason names why an inbound link failed, from transport's fixed
// set, and the peer HELLO named if it got that far.
func refusalReason(err error) (transport.Reason, string) {
	var refused *transport.RefusedError
	var limit *limitError
	var failed *transport.FailedError
	switch {
	case errors.As(err, &limit):
		return transport.ReasonLimit, limit.peer
	case errors.As(err, &refused):
		return transport.Reason(refused.Code.String()), refused.Peer
	case errors.As(err, &failed):
		return failed.Reason, ""
	}
	return transport.ReasonTLSProtocol, ""
}

// setMemberSocketOptions tunes a member-side socket of a link of this
// sidecar's current plan.
func (s *Sidecar) setMemberSocketOptions(c *net.TCPConn) {
	setMemberSocketOptions(c, s.current().plan.Link.PeerTimeout)
}

// setMemberSocketOptions tunes a member-side socket: no Nagle delay,
// keepalive, and TCP_USER_TIMEOUT at peer_timeout, so that a member that
// stops acknowledging (hung, or a connection its listener never accepted)
// has the link cut instead of holding it, and two descriptors, until the
// kernel gives up after about 15 minutes.
func setMemberSocketOptions(c *net.TCPConn, userTimeout time.Duration) {
	_ = c.SetNoDelay(true)
	_ = c.SetKeepAlive(true)
	_ = c.SetKeepAlivePeriod(15 * time.Second)
	_ = transport.SetUserTimeout(c, userTimeout)
}

// startLink relays l on a fresh goroutine, so that the stack the dial or
// the handshake grew is freed and an idle link costs two small stacks.
func (s *Sidecar) startLink(l *liveLink) {
	l.started = time.Now()
	if !s.links.add(l) {
		l.kill("sidecar shutting down")
		l.release()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer l.release()
		s.runLink(l)
	}()
}

// runLink relays one link in both directions until both have ended, or
// until one fails, then logs one line about it.
func (s *Sidecar) runLink(l *liveLink) {
	defer s.links.remove(l)

	memberEnd := relay.TCP(l.member)
	peerEnd := relay.Endpoint{Conn: l.link.Conn, Raw: l.link.Raw, EndOfStream: l.link.EndOfStream}
	if sock := l.link.Socket(); sock != nil {
		peerEnd.Socket = sock
	}
	var toMember int64
	var refusal error // why the peer did not accept a link this side dialed
	done := make(chan struct{})
	go func() { // the peer → member direction
		defer close(done)
		if err := l.link.AwaitAccept(); err != nil { // a no-op on inbound links
			refusal = err
			l.kill("not accepted by peer")
			return
		}
		var err error
		toMember, err = relay.Pipe(memberEnd, peerEnd, s.pool)
		if err != nil {
			// The stream from the peer was cut short: abort both sides.
			s.abort(l, "peer", err, "peer→member: ")
			return
		}
		l.halfClose()
	}()
	toPeer, err := relay.Pipe(peerEnd, memberEnd, s.pool)
	if err != nil {
		s.abort(l, "member", err, "member→peer: ")
	} else {
		l.halfClose()
	}
	<-done
	l.kill("")
	s.logLink(l, toPeer, toMember, refusal)
}

// abort ends a link whose stream from side ("peer" or "member") was cut
// short by err, and counts why.
func (s *Sidecar) abort(l *liveLink, side string, err error, prefix string) {
	if l.kill(prefix + err.Error()) {
		s.metrics.aborts.WithLabelValues(l.channel, abortCause(side, err)).Inc()
	}
}

// abortCause names how a stream was cut short, for the aborts metric.
func abortCause(side string, err error) string {
	switch {
	case errors.Is(err, transport.ErrNoCloseNotify):
		return side + "_no_close_notify"
	case errors.Is(err, syscall.ECONNRESET):
		return side + "_reset"
	}
	return side + "_error"
}

func (s *Sidecar) logLink(l *liveLink, toPeer, toMember int64, refusal error) {
	reason := l.killReason()
	level := zerolog.InfoLevel
	outcome := "ok"
	switch {
	case refusal != nil:
		level = zerolog.WarnLevel
		reason = "not accepted: " + refusal.Error()
		outcome = "not_accepted"
	case reason == "":
		reason = "closed"
	default:
		outcome = "failed"
	}
	s.metrics.links.WithLabelValues(l.channel, l.peer, string(l.direction), outcome).Inc()
	s.metrics.addClosed(l.peer, l.channel, toPeer, toMember)
	s.log.WithLevel(level).
		Str("peer", l.peer).
		Str("channel", l.channel).
		Str("dir", string(l.direction)).
		Int64("bytes_to_peer", toPeer).
		Int64("bytes_to_member", toMember).
		Float64("duration_s", time.Since(l.started).Seconds()).
		Str("reason", reason).
		Msg("link closed")
}
