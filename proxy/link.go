package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/transport"
)

// serveOutbound tunnels one connection from this member's service to a
// peer: dial the peer's sidecar, then relay.
func (s *Sidecar) serveOutbound(ctx context.Context, member *net.TCPConn, r *outboundRoute) {
	defer s.wg.Done()
	setSocketOptions(member)
	link, err := r.dialer.Dial(ctx)
	if err != nil {
		member.Close()
		s.log.Warn().Str("peer", r.Peer).Str("channel", r.Channel).Str("dir", string(Outbound)).Err(err).Msg("link failed")
		return
	}
	s.runLink(&liveLink{peer: r.Peer, channel: r.Channel, direction: Outbound, link: link, member: member})
}

// serveInbound answers one link dialed by a peer's sidecar: handshake,
// HELLO, connect this member's service for the channel, ACCEPT, relay.
func (s *Sidecar) serveInbound(ctx context.Context, raw *net.TCPConn) {
	defer s.wg.Done()
	setSocketOptions(raw)
	remote := raw.RemoteAddr().String()
	link, err := s.acceptor.Accept(ctx, raw)
	if err != nil {
		ev := s.log.Warn().Str("remote", remote).Str("dir", string(Inbound)).Err(err)
		var refused *transport.RefusedError
		if errors.As(err, &refused) {
			ev = ev.Str("peer", refused.Peer).Str("code", refused.Code.String())
		}
		ev.Msg("link refused")
		return
	}
	h := link.Hello
	target := s.delivery[h.Channel]
	d := net.Dialer{Timeout: s.plan.DialTimeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		reason := fmt.Sprintf("member %s's service for channel %s at %s is not reachable: %v", s.plan.Member, h.Channel, target, err)
		_ = link.Refuse(transport.RefuseUnavailable, reason)
		s.log.Warn().Str("peer", h.From).Str("channel", h.Channel).Str("dir", string(Inbound)).Msg("link refused: " + reason)
		return
	}
	member := c.(*net.TCPConn)
	setSocketOptions(member)
	if err := link.Accept(); err != nil {
		member.Close()
		link.Close()
		s.log.Warn().Str("peer", h.From).Str("channel", h.Channel).Str("dir", string(Inbound)).Err(err).Msg("link failed")
		return
	}
	s.runLink(&liveLink{peer: h.From, channel: h.Channel, direction: Inbound, link: link, member: member})
}

func setSocketOptions(c *net.TCPConn) {
	_ = c.SetNoDelay(true)
	_ = c.SetKeepAlive(true)
	_ = c.SetKeepAlivePeriod(15 * time.Second)
}

// runLink relays one link in both directions until both have ended, or
// until one fails, then logs one line about it.
func (s *Sidecar) runLink(l *liveLink) {
	l.started = time.Now()
	s.links.add(l)
	defer s.links.remove(l)

	memberEnd := endpoint{conn: l.member, raw: l.member}
	peerEnd := endpoint{conn: l.link.Conn, raw: l.link.Raw}
	type result struct {
		toPeer bool
		n      int64
		err    error
	}
	results := make(chan result, 2)
	go func() { // the peer → member direction
		if l.link.Dialed() {
			if err := l.link.AwaitAccept(); err != nil {
				results <- result{err: err}
				return
			}
		}
		n, err := pipe(memberEnd, peerEnd, s.pool)
		results <- result{n: n, err: err}
	}()
	n, err := pipe(peerEnd, memberEnd, s.pool)
	results <- result{toPeer: true, n: n, err: err}

	var toPeer, toMember int64
	var firstErr error
	for range 2 {
		r := <-results
		if r.toPeer {
			toPeer = r.n
		} else {
			toMember = r.n
		}
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			// One side failed: the other direction must not linger.
			l.kill(describe(r.err, r.toPeer))
		}
	}
	l.kill("")
	s.logLink(l, toPeer, toMember, firstErr)
}

// describe says which way a relay error went.
func describe(err error, toPeer bool) string {
	if toPeer {
		return "member→peer: " + err.Error()
	}
	return "peer→member: " + err.Error()
}

func (s *Sidecar) logLink(l *liveLink, toPeer, toMember int64, err error) {
	reason := l.killReason()
	level := zerolog.InfoLevel
	var refused transport.Refuse
	if errors.As(err, &refused) {
		level = zerolog.WarnLevel
		reason = "refused by peer: " + refused.Error()
	} else if reason == "" {
		reason = "closed"
	}
	s.log.WithLevel(level).
		Str("peer", l.peer).
		Str("channel", l.channel).
		Str("dir", string(l.direction)).
		Int64("bytes_to_peer", toPeer).
		Int64("bytes_to_member", toMember).
		Dur("duration", time.Since(l.started)).
		Str("reason", reason).
		Msg("link closed")
}
