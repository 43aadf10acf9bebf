package proxy

import (
	"fmt"
	"time"
)

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
