package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/groupwire/groupwire/proxy/capture"
	"github.com/groupwire/groupwire/proxy/relay"
	"github.com/groupwire/groupwire/transport"
)

// The onboarding window: in drop-in mode, while a channel accepts DISABLED
// (accept_modes), a captured connection to a peer whose sidecar refuses it
// (no sidecar there yet) goes straight to the peer member in plaintext, as
// it did before groupwire. Those are direct links. A reload that closes
// the window cuts them (reason mode), and the capture rules then reset any
// plaintext left between the members. README, "Securing a running group".

// directLink is a member's connection relayed straight to a peer member.
type directLink struct {
	peer, channel string
	member        *net.TCPConn // this member's captured connection
	remote        *net.TCPConn // the connection to the peer member's own address
	started       time.Time
	reason        atomic.Pointer[string] // why it was cut; the first kill wins
}

// kill ends the link; the first reason given is the one logged, and it
// reports whether this call was the first. With a reason both sockets are
// reset, so neither member takes the stream for complete.
func (l *directLink) kill(reason string) bool {
	first := l.reason.CompareAndSwap(nil, &reason)
	if reason != "" {
		_ = l.member.SetLinger(0)
		_ = l.remote.SetLinger(0)
	}
	l.member.Close()
	l.remote.Close()
	return first
}

// directLinks tracks the live direct links, and the pairs whose first
// direct link was logged (once per pair while the window stays open).
type directLinks struct {
	mu     sync.Mutex
	links  map[*directLink]struct{}
	logged map[pairKey]bool
	closed bool // no link is added once set
}

func newDirectLinks() *directLinks {
	return &directLinks{links: make(map[*directLink]struct{}), logged: make(map[pairKey]bool)}
}

// add registers l. It reports false once closed, and first when l is its
// pair's first direct link since the window opened.
func (d *directLinks) add(l *directLink) (ok, first bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, false
	}
	d.links[l] = struct{}{}
	k := pairKey{l.peer, l.channel}
	first = !d.logged[k]
	d.logged[k] = true
	return true, first
}

func (d *directLinks) remove(l *directLink) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.links, l)
}

// all returns the live direct links.
func (d *directLinks) all() []*directLink {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*directLink, 0, len(d.links))
	for l := range d.links {
		out = append(out, l)
	}
	return out
}

// close refuses further links and returns those still live.
func (d *directLinks) close() []*directLink {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return d.all()
}

// forgetClosed lets the next direct link of every pair whose window is
// no longer open be logged again: if its window opens again, that is news.
func (d *directLinks) forgetClosed(open func(pairKey) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.logged {
		if !open(k) {
			delete(d.logged, k)
		}
	}
}

// goesDirect reports whether a connection whose link dial failed with err
// goes straight to the peer member: the channel's onboarding window is
// open and nothing listens on the peer's link port (ECONNREFUSED: no
// sidecar there yet). A timeout, a TLS failure or a refusal by a sidecar
// never does, so a peer that has a sidecar is never reached around it.
func (r *outboundRoute) goesDirect(err error) bool {
	return err != nil && r.Direct != "" && errors.Is(err, syscall.ECONNREFUSED)
}

// windowOpen reports whether the pair's onboarding window is open in g.
func (g *generation) windowOpen(k pairKey) bool {
	r := g.routes[k]
	return r != nil && r.Direct != ""
}

// serveDirect relays a captured connection straight to the peer member's
// own address, the connection's original destination, in plaintext. It
// holds the link's place under max_links_per_peer until it ends.
func (s *Sidecar) serveDirect(ctx context.Context, member *net.TCPConn, r *outboundRoute, release func()) {
	defer release()
	remote, err := s.dialDirect(ctx, member)
	if err != nil {
		s.metrics.links.WithLabelValues(r.Channel, r.Peer, string(Outbound), "failed").Inc()
		_ = member.SetLinger(0)
		member.Close()
		if s.logRate.allow("direct_failed", r.Peer, time.Now()) {
			s.log.Warn().Str("peer", r.Peer).Str("channel", r.Channel).Str("path", "direct").Err(err).Msg("link failed")
		}
		return
	}
	l := &directLink{peer: r.Peer, channel: r.Channel, member: member, remote: remote, started: time.Now()}
	ok, first := s.direct.add(l)
	if !ok {
		l.kill("sidecar shutting down")
		return
	}
	s.metrics.direct.WithLabelValues(r.Channel, r.Peer).Inc()
	s.health.direct(r.Peer, r.Channel)
	if first {
		s.log.Warn().Str("peer", r.Peer).Str("channel", r.Channel).Str("address", remote.RemoteAddr().String()).
			Msg("onboarding window: the peer has no sidecar yet; its connections go to it directly, in plaintext, until the window closes")
	}
	s.runDirect(l)
}

// dialDirect connects to the captured connection's original destination,
// with the sidecar's mark so that the rules do not capture it again.
func (s *Sidecar) dialDirect(ctx context.Context, member *net.TCPConn) (*net.TCPConn, error) {
	dst, err := capture.OriginalDst(member)
	if err != nil {
		return nil, err
	}
	plan := s.current().plan
	d := net.Dialer{Timeout: plan.Link.DialTimeout, KeepAlive: -1, Control: transport.MarkControl(plan.Link.Mark)}
	c, err := d.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		return nil, fmt.Errorf("direct to %s: %w", dst, err)
	}
	remote := c.(*net.TCPConn)
	s.setMemberSocketOptions(remote) // the member's side has them already (serveOutbound)
	return remote, nil
}

// runDirect relays a direct link both ways until both directions have
// ended or one fails, then logs it.
func (s *Sidecar) runDirect(l *directLink) {
	defer s.direct.remove(l)
	var toMember int64
	done := make(chan struct{})
	go func() { // the peer → member direction
		defer close(done)
		var err error
		if toMember, err = relay.Pipe(relay.TCP(l.member), relay.TCP(l.remote), s.pool); err != nil {
			l.kill("peer→member: " + err.Error())
		}
	}()
	toPeer, err := relay.Pipe(relay.TCP(l.remote), relay.TCP(l.member), s.pool)
	if err != nil {
		l.kill("member→peer: " + err.Error())
	}
	<-done
	l.kill("")
	outcome, reason := "ok", l.reason.Load()
	if *reason != "" {
		outcome = "failed"
	}
	s.metrics.links.WithLabelValues(l.channel, l.peer, string(Outbound), outcome).Inc()
	s.log.Info().Str("peer", l.peer).Str("channel", l.channel).Str("dir", string(Outbound)).Str("path", "direct").
		Int64("bytes_to_peer", toPeer).Int64("bytes_to_member", toMember).
		Float64("duration_s", time.Since(l.started).Seconds()).Str("reason", closedReason(*reason)).Msg("link closed")
}

// closedReason is "closed" for a link that ended cleanly.
func closedReason(r string) string {
	if r == "" {
		return "closed"
	}
	return r
}

// closeWindows ends the onboarding window of every pair whose window g
// closed (or that g no longer has): its direct links are cut, counted as
// reason mode; its pair is no longer shown direct; and its next direct
// link, should the window open again, is logged anew. It returns how many
// links it cut.
func (s *Sidecar) closeWindows(g *generation) int {
	s.direct.forgetClosed(g.windowOpen)
	s.health.clearDirect(g.windowOpen)
	cut := 0
	for _, l := range s.direct.all() {
		if g.windowOpen(pairKey{l.peer, l.channel}) {
			continue
		}
		if l.kill("onboarding window closed: direct plaintext links end") {
			cut++
			s.metrics.cut.WithLabelValues(l.channel, "mode").Inc()
		}
	}
	return cut
}
