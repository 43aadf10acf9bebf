package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
)

// TestKilledPeerMidTransferIsAReset: mysql-2's member streams to mysql-1's
// member without end; mysql-2's sidecar is SIGKILLed mid-stream. mysql-1's
// member must see a connection reset, never a clean end of stream: a state
// transfer cut short must not look finished.
func TestKilledPeerMidTransferIsAReset(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		Members: []string{"mysql-1", "mysql-2"}, Channels: []string{"sst"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", g.ServiceAddr("mysql-2", "sst"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go streamForever(ln)
	procs := startSidecars(t, g)
	c, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "sst"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.CopyN(io.Discard, c, 8<<20); err != nil {
		t.Fatalf("reading the stream: %v\n%s", err, procs["mysql-1"].logs)
	}
	procs["mysql-2"].cmd.Process.Kill()
	// The reset comes within milliseconds; 10 s only bounds a test that
	// would otherwise hang if the member were left waiting.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	switch {
	case err == nil:
		t.Fatalf("the member saw a clean end of stream after %d more bytes: an aborted transfer passed off as complete\n%s", n, procs["mysql-1"].logs)
	case !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("the member's read ended with %v, want a connection reset\n%s", err, procs["mysql-1"].logs)
	}
	waitLog(t, procs["mysql-1"], "peer aborted: no close_notify")
	metrics := "http://" + g.Member("mysql-1").IP + ":9900/metrics"
	waitMetricSum(t, metrics, `groupwire_link_aborts_total{cause="peer_no_close_notify"`, 1)
}

// streamForever writes zeros to every connection until it breaks.
func streamForever(ln net.Listener) {
	buf := make([]byte, 64<<10)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for ctx.Err() == nil {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}
