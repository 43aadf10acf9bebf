package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
)

// stuckBound bounds how long a stuck link may live in these tests: the
// timeouts under test are 2 s, the housekeeping tick 1 s, and the rest is
// margin for a loaded machine. Without the cut, the link lives for ever
// (a member that never reads keeps acknowledging zero-window probes) or
// until the kernel gives up after about 15 minutes.
const stuckBound = 30 * time.Second

// TestStuckMemberIsCut: a link is cut, and reaches the other member as a
// reset, when its member stops reading (TCP_USER_TIMEOUT on the member
// socket, at peer_timeout) and when it is half-closed with nothing moving
// the other way (half_close_timeout); a half-closed link that keeps moving
// bytes is left alone.
func TestStuckMemberIsCut(t *testing.T) {
	for _, mode := range []string{"VERIFY_IDENTITY", "DISABLED"} {
		t.Run(mode, func(t *testing.T) {
			g, _, logs := startGroup(t, localgroup.Options{Mode: mode, NoEcho: true, Channels: []string{"group"},
				ExtraYAML: "peer_timeout: 2s\nhalf_close_timeout: 2s\n"})
			t.Run("member stops reading", func(t *testing.T) { memberStopsReading(t, g, logs.String) })
			t.Run("half-closed, nothing moving", func(t *testing.T) { halfClosedAndQuiet(t, g, logs.String) })
			t.Run("half-closed, still moving", func(t *testing.T) { halfClosedAndMoving(t, g, logs.String) })
		})
	}
}

// memberStopsReading: mysql-1's member accepts and never reads; mysql-2's
// member sends 512 KiB, more than the member's socket takes while it does
// not read, and waits for an answer (no half-close: half_close_timeout
// does not apply). The rest waits in mysql-1's sidecar, whose link socket
// has taken it all, so the link to mysql-2 is quiet and only the member
// socket's timeout can see that nothing moves. The link must be cut and
// mysql-2's member reset.
func memberStopsReading(t *testing.T, g *localgroup.Group, logs func() string) {
	done := make(chan struct{})
	defer close(done)
	serveOnce(t, g.ServiceAddr("mysql-1", "group"), func(*net.TCPConn) { <-done })
	c := dialFrom(t, g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-1", "group"))
	c.SetDeadline(time.Now().Add(stuckBound))
	_, err := c.Write(make([]byte, 512<<10))
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("sending to a member that stopped reading: %v, want a reset within %v\n%s", err, stuckBound, logs())
	}
}

// halfClosedAndQuiet: mysql-2's member sends a line and shuts its write
// side; mysql-1's member reads it and then neither writes nor closes. The
// half-closed link must be cut and mysql-2's member reset.
func halfClosedAndQuiet(t *testing.T, g *localgroup.Group, logs func() string) {
	done := make(chan struct{})
	defer close(done)
	serveOnce(t, g.ServiceAddr("mysql-1", "group"), func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		<-done // never answers, never closes
	})
	c := dialFrom(t, g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-1", "group"))
	if _, err := c.Write([]byte("request\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(stuckBound))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a half-closed link with nothing moving: read %v, want a reset within %v\n%s", err, stuckBound, logs())
	}
}

// halfClosedAndMoving: after mysql-2's member shuts its write side,
// mysql-1's member answers for twice half_close_timeout, a line every
// 100 ms, then closes. Every line and a clean end must arrive.
func halfClosedAndMoving(t *testing.T, g *localgroup.Group, logs func() string) {
	const lines = 40 // 4 s at 100 ms
	serveOnce(t, g.ServiceAddr("mysql-1", "group"), func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		for i := range lines {
			fmt.Fprintf(c, "line %02d\n", i)
			time.Sleep(100 * time.Millisecond)
		}
		c.CloseWrite()
	})
	c := dialFrom(t, g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-1", "group"))
	if _, err := c.Write([]byte("stream please\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(stuckBound))
	got, err := io.ReadAll(c)
	if err != nil || len(got) != lines*len("line 00\n") {
		t.Fatalf("a half-closed link still moving bytes: got %d bytes (%v), want %d and a clean end\n%s", len(got), err, lines*len("line 00\n"), logs())
	}
}

// serveOnce accepts one connection on addr and runs handle on it.
func serveOnce(t *testing.T, addr string, handle func(*net.TCPConn)) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c.(*net.TCPConn))
	}()
}
