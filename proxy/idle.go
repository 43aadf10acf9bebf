package proxy

import (
	"fmt"
	"time"
)

// cutHalfClosed cuts links one direction of which ended cleanly at least
// limit ago (half_close_timeout) and on whose member socket nothing has
// moved either way for limit: the other direction waits for a member or
// peer that will never send, or never read. A link still moving bytes is
// left alone, however long it has been half-closed.
func (s *Sidecar) cutHalfClosed(limit time.Duration) {
	now := time.Now()
	for _, l := range s.links.all() {
		since := l.halfClosedSince()
		if since.IsZero() || now.Sub(since) < limit {
			continue
		}
		quiet, err := quietFor(l.member)
		if err != nil || quiet < limit {
			continue // closing, or still moving
		}
		if l.kill(fmt.Sprintf("half-closed for %v with nothing moving (half_close_timeout %v)", now.Sub(since).Round(time.Second), limit)) {
			s.metrics.cut.WithLabelValues(l.channel, "half_closed").Inc()
		}
	}
}

// cutIdle cuts links on which no byte has moved either way for limit
// (idle_timeout). It asks the kernel rather than the relay: the member
// socket's TCP_INFO says when it last received (member → peer) and sent
// (peer → member) data, so the spliced DISABLED path and the TLS path are
// watched alike and the hot path does no bookkeeping. TCP_INFO is Linux's:
// elsewhere quietFor fails and idle_timeout cuts nothing.
func (s *Sidecar) cutIdle(limit time.Duration) {
	now := time.Now()
	for _, l := range s.links.all() {
		idle, err := quietFor(l.member)
		if err != nil {
			continue // the link is closing
		}
		idle = min(idle, now.Sub(l.started))
		if idle < limit {
			continue
		}
		if l.kill(fmt.Sprintf("idle for %v (idle_timeout %v)", idle.Round(time.Second), limit)) {
			s.metrics.cut.WithLabelValues(l.channel, "idle").Inc()
		}
	}
}
