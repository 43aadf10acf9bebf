package transport

import (
	"fmt"
	"net"
	"time"
)

// Link sockets notice a dead peer (a crashed host, a partition) within the
// peer timeout (peer_timeout, default 30 s), so the member's connection is
// closed and the group software reconnects instead of waiting for the
// kernel's defaults (two hours of keepalive silence, fifteen minutes of
// retransmissions): keepalive probes start after a third of it of silence,
// linkKeepAliveCount probes a sixth of it apart end the link, and
// TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged. That
// last bound is Linux's (socket_linux.go); elsewhere only keepalive runs,
// and a peer that stops acknowledging data is noticed when the kernel gives
// up retransmitting.
const linkKeepAliveCount = 4

// tuneLinkSocket sets TCP_NODELAY (group messages are small and
// latency-bound), keepalive and TCP_USER_TIMEOUT on a link socket.
func tuneLinkSocket(c *net.TCPConn, peerTimeout time.Duration) error {
	if err := c.SetNoDelay(true); err != nil {
		return fmt.Errorf("set TCP_NODELAY: %w", err)
	}
	if err := c.SetKeepAliveConfig(net.KeepAliveConfig{
		Enable: true, Idle: max(peerTimeout/3, time.Second), Interval: max(peerTimeout/6, time.Second), Count: linkKeepAliveCount,
	}); err != nil {
		return fmt.Errorf("set keepalive: %w", err)
	}
	return SetUserTimeout(c, peerTimeout)
}
