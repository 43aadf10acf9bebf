package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLinkSocketOptions: both ends of a link notice a dead peer within
// the peer timeout (keepalive and TCP_USER_TIMEOUT; 30 s by default, 12 s
// on the dialer here), and send small messages at once (TCP_NODELAY).
func TestLinkSocketOptions(t *testing.T) {
	addr, results := startAcceptor(t, &Policy{Channel: "group", Mode: Disabled})
	d := NewDialer(&Policy{Channel: "group", Mode: Disabled}, "mysql-2", Peer{Name: "mysql-1", Address: addr}, LinkOptions{PeerTimeout: 12 * time.Second})
	link, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	if err := link.AwaitAccept(); err != nil {
		t.Fatal(err)
	}
	r := <-results
	if r.err != nil {
		t.Fatal(r.err)
	}
	for side, c := range map[string]*net.TCPConn{"dialer": link.Raw, "acceptor": r.link.Raw} {
		timeout, idle, interval := 30000, 10, 5
		if side == "dialer" {
			timeout, idle, interval = 12000, 4, 2
		}
		want := map[string]struct{ opt, val int }{
			"TCP_USER_TIMEOUT (ms)": {unix.TCP_USER_TIMEOUT, timeout},
			"TCP_KEEPIDLE (s)":      {unix.TCP_KEEPIDLE, idle},
			"TCP_KEEPINTVL (s)":     {unix.TCP_KEEPINTVL, interval},
			"TCP_KEEPCNT":           {unix.TCP_KEEPCNT, 4},
			"TCP_NODELAY":           {unix.TCP_NODELAY, 1},
		}
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range want {
			var got int
			var gerr error
			rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, w.opt) })
			if gerr != nil || got != w.val {
				t.Errorf("%s: %s = %d (%v), want %d", side, name, got, gerr, w.val)
			}
		}
		rc.Control(func(fd uintptr) {
			if on, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || on != 1 {
				t.Errorf("%s: SO_KEEPALIVE = %d (%v)", side, on, err)
			}
		})
	}
}
