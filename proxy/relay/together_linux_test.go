//go:build linux

package relay

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/groupwire/groupwire/internal/testutil"
)

// TestPipeSeesTheEndThatCameWithTheData: the bytes of a message and the
// end of its stream (a FIN, or a reset) often reach the kernel together,
// as one readiness edge. A leg that took a short read for "nothing more"
// and parked would never see the end: a read must find the socket empty
// before the leg parks. Each case queues the data and the end before the
// relay starts, so the edge is spent before its first read.
func TestPipeSeesTheEndThatCameWithTheData(t *testing.T) {
	t.Run("member FIN", func(t *testing.T) {
		client, server := tlsPair(t)
		memberFar, member := tcpPair(t)
		sendThen(t, memberFar, member, memberFar.CloseWrite)
		err := pipeWithin(t, client, TCP(member))
		if err != nil {
			t.Fatalf("Pipe = %v, want a clean end", err)
		}
		_ = server.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, err := io.ReadAll(server.Conn); string(got) != "payload" || err != nil {
			t.Fatalf("the peer read %q, %v; want the payload and a clean end", got, err)
		}
	})
	t.Run("member reset", func(t *testing.T) {
		client, _ := tlsPair(t)
		memberFar, member := tcpPair(t)
		sendThen(t, memberFar, member, func() error { return reset(memberFar) })
		if err := pipeWithin(t, client, TCP(member)); err == nil {
			t.Fatal("Pipe = nil after the member reset its socket, want the reset")
		}
	})
	t.Run("peer reset", func(t *testing.T) {
		client, server := tlsPair(t)
		member, _ := tcpPair(t)
		sendThen(t, client.Conn, server.Raw, func() error { return reset(client.Raw) })
		if err := pipeWithin(t, TCP(member), server); err == nil {
			t.Fatal("Pipe = nil after the peer reset the link, want the reset")
		}
	})
}

// sendThen writes a payload to c, ends the stream with end, and waits
// until both are queued at far, the socket the relay will read: bytes to
// read, and the connection past ESTABLISHED (CLOSE_WAIT after a FIN, CLOSE
// after a reset). So the relay starts on data and an end the kernel
// already holds, and the case tests what it says.
func sendThen(t *testing.T, c net.Conn, far *net.TCPConn, end func() error) {
	t.Helper()
	if _, err := c.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the payload and the end of the stream queued at the far socket", func() bool {
		inq, state, err := queued(far)
		if err != nil {
			t.Fatal(err)
		}
		return inq > 0 && (state == unix.BPF_TCP_CLOSE_WAIT || state == unix.BPF_TCP_CLOSE)
	})
}

// queued returns the bytes c's socket holds to be read (SIOCINQ) and its
// TCP state (TCP_INFO).
func queued(c *net.TCPConn) (inq int, state uint8, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	cerr := rc.Control(func(fd uintptr) {
		if inq, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ); err != nil {
			return
		}
		var info *unix.TCPInfo
		if info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = info.State
		}
	})
	return inq, state, errors.Join(cerr, err)
}

// reset closes c with a reset (SO_LINGER 0) instead of a FIN.
func reset(c *net.TCPConn) error {
	if err := c.SetLinger(0); err != nil {
		return err
	}
	return c.Close()
}

// pipeWithin runs Pipe(dst, src) and returns its error. The bound is
// generous: it only turns a leg that parked past the end into a failure
// instead of a hang.
func pipeWithin(t *testing.T, dst, src Endpoint) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := Pipe(dst, src, NewPool()); done <- err }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Pipe still running 20 s after its source ended: the end was never read")
		return errors.New("unreachable")
	}
}
