package transport

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Link sockets notice a dead peer (a crashed host, a partition) within
// about half a minute, so the member's connection is closed and the group
// software reconnects instead of waiting for the kernel's defaults (two
// hours of keepalive silence, fifteen minutes of retransmissions):
// keepalive probes start after linkKeepAliveIdle of silence and
// linkKeepAliveCount unanswered probes end the link; TCP_USER_TIMEOUT bounds
// how long sent data may stay unacknowledged.
const (
	linkKeepAliveIdle     = 10 * time.Second
	linkKeepAliveInterval = 5 * time.Second
	linkKeepAliveCount    = 4
	linkUserTimeout       = 30 * time.Second
)

// tuneLinkSocket sets TCP_NODELAY (group messages are small and
// latency-bound), keepalive and TCP_USER_TIMEOUT on a link socket.
func tuneLinkSocket(c *net.TCPConn) error {
	if err := c.SetNoDelay(true); err != nil {
		return fmt.Errorf("set TCP_NODELAY: %w", err)
	}
	if err := c.SetKeepAliveConfig(net.KeepAliveConfig{
		Enable: true, Idle: linkKeepAliveIdle, Interval: linkKeepAliveInterval, Count: linkKeepAliveCount,
	}); err != nil {
		return fmt.Errorf("set keepalive: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(linkUserTimeout/time.Millisecond))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set TCP_USER_TIMEOUT: %w", serr)
	}
	return nil
}
