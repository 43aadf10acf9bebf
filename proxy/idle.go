package proxy

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// cutIdle cuts links on which no byte has moved either way for limit
// (idle_timeout). It asks the kernel rather than the relay: the member
// socket's TCP_INFO says when it last received (member → peer) and sent
// (peer → member) data, so the spliced DISABLED path and the TLS path are
// watched alike and the hot path does no bookkeeping.
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

// quietFor reports how long a TCP socket has carried no data in either
// direction.
func quietFor(c *net.TCPConn) (time.Duration, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if gerr != nil {
		return 0, gerr
	}
	return time.Duration(min(info.Last_data_recv, info.Last_data_sent)) * time.Millisecond, nil
}
