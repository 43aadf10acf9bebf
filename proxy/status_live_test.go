package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/proxy"
)

// TestLiveLinkIsProofAndIsCounted: with probes off, a link set up on a
// pair is what shows the pair up (and a pair with no link stays down),
// and the bytes a live link has moved are in groupwire_link_bytes_total
// while it is still open, read from its member socket at scrape time.
func TestLiveLinkIsProofAndIsCounted(t *testing.T) {
	for _, mode := range []string{"VERIFY_IDENTITY", "DISABLED"} {
		t.Run(mode, func(t *testing.T) {
			const toMember, back = 100_000, 7_000
			g, r, _ := startGroup(t, localgroup.Options{Mode: mode, NoEcho: true, Channels: []string{"group"}, AdminPort: 9900,
				ExtraYAML: "probe_interval: 0\n"})
			release := make(chan struct{})
			defer close(release)
			serveOnce(t, g.ServiceAddr("mysql-1", "group"), func(c *net.TCPConn) {
				if _, err := io.CopyN(io.Discard, c, toMember); err == nil {
					_, _ = c.Write(make([]byte, back))
				}
				<-release // the link stays open while the test scrapes
			})
			c := dialFrom(t, g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-1", "group"))
			if _, err := c.Write(make([]byte, toMember)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, back)); err != nil {
				t.Fatal(err)
			}
			up := pairsUp(r.Sidecars["mysql-1"].Status())
			if !up["mysql-2"] || up["mysql-3"] {
				t.Errorf("mysql-1's pairs with probes off: %v; want mysql-2 up (a link proved it) and mysql-3 down (nothing did)", up)
			}
			for _, side := range []struct {
				member, peer string
				want         map[string]float64
			}{
				{"mysql-1", "mysql-2", map[string]float64{"to_member": toMember, "to_peer": back}},
				{"mysql-2", "mysql-1", map[string]float64{"to_member": back, "to_peer": toMember}},
			} {
				metrics := "http://" + g.Member(side.member).IP + ":9900/metrics"
				for dir, want := range side.want {
					name := fmt.Sprintf(`groupwire_link_bytes_total{channel="group",direction=%q,peer=%q}`, dir, side.peer)
					if err := waitMetric(metrics, name, want); err != nil {
						t.Errorf("%s, with the link still open: %v", side.member, err)
					}
				}
			}
		})
	}
}

// pairsUp maps each peer of st to whether its pair is up.
func pairsUp(st proxy.Status) map[string]bool {
	up := map[string]bool{}
	for _, p := range st.Peers {
		up[p.Peer] = p.Up
	}
	return up
}

// waitMetric waits until the metric line name reads want. The bound is
// generous: the kernel's counts are final once the member has read (or
// acknowledged) the bytes, which happens within milliseconds.
func waitMetric(url, name string, want float64) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := scrape(url, name)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s = %v (%v), want %v", name, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape reads one metric line's value.
func scrape(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s", name)
}
