package proxy_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
)

// TestMemberResetReachesFarMember: a member that resets its connection in
// the middle of a stream makes the far member see a reset, never a clean
// end, on the TLS and the spliced path alike; the sidecars count it.
func TestMemberResetReachesFarMember(t *testing.T) {
	for _, mode := range []string{"VERIFY_CA", "DISABLED"} {
		t.Run(mode, func(t *testing.T) {
			g, _, logs := startGroup(t, localgroup.Options{Mode: mode, NoEcho: true})
			ended := make(chan error, 1)
			got := make(chan int64, 1)
			serve(t, g.ServiceAddr("mysql-2", "group"), func(c *net.TCPConn) {
				n, err := io.Copy(io.Discard, struct{ io.Reader }{c})
				got <- n
				ended <- err
			})
			c := dialFrom(t, g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group"))
			if _, err := c.Write(make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // let the bytes cross
			c.SetLinger(0)
			c.Close()
			var err error
			select {
			case err = <-ended:
			case <-time.After(10 * time.Second): // a missed reset would leave the far member waiting for good
				t.Fatalf("far member still connected after the near member's reset\nlog:\n%s", logs)
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("far member's read ended with %v after %d bytes, want a connection reset\nlog:\n%s", err, <-got, logs)
			}
			logs.WaitFor(t, logWait, `"reason":"member→peer: `)
		})
	}
}
