package proxy_test

import (
	"net"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/proxy"
)

// TestMemoryReleaserCountsHandshakes: silent connections held in their
// handshake count towards what the memory releaser watches, and leave the
// count when they end, as links do.
func TestMemoryReleaserCountsHandshakes(t *testing.T) {
	const silent = 12
	g, r, _ := startGroup(t, localgroup.Options{Channels: []string{"group"}, NoEcho: true, ExtraYAML: "handshake_timeout: 30s\n"})
	sc := r.Sidecars["mysql-1"]
	addr := net.JoinHostPort(g.Member("mysql-1").IP, "24900")
	var conns []net.Conn
	for range silent {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitHeld(t, sc, silent)
	for _, c := range conns {
		c.Close()
	}
	waitHeld(t, sc, 0)
}

// waitHeld waits until sc holds want connections. The bound is generous:
// the count moves as the sidecar accepts or drops a connection.
func waitHeld(t *testing.T, sc *proxy.Sidecar, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for proxy.ConnectionsHeld(sc) != want {
		if time.Now().After(deadline) {
			t.Fatalf("the memory releaser sees %d connections, want %d", proxy.ConnectionsHeld(sc), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
