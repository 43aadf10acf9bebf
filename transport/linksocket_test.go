package transport

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestReadReadyParksWhereTheReadSawNothing: inside ReadReady's callback a
// read with nothing to read returns ErrWouldBlock at once; asking to wait
// then parks until bytes come, and the callback runs again and reads them.
// Outside the callback, reads block as usual.
func TestReadReadyParksWhereTheReadSawNothing(t *testing.T) {
	local, remote := tcpPair(t)
	s := NewSocket(local)
	// Generous, and only there so that a read that blocks where it must
	// not fails the test instead of hanging it.
	if err := local.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	var calls int
	var got string
	var errs []error
	err := s.ReadReady(func() bool {
		calls++
		n, err := s.Read(buf)
		if n > 0 {
			got = string(buf[:n])
			return true
		}
		errs = append(errs, err)
		if calls == 1 {
			go remote.Write([]byte("ready")) // after the read that saw nothing
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != "ready" || len(errs) == 0 || !errors.Is(errs[0], ErrWouldBlock) {
		t.Fatalf("read %q after %d calls, errors %v; want \"ready\" after ErrWouldBlock", got, calls, errs)
	}
	go remote.Write([]byte("later"))
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "later" {
		t.Fatalf("a read outside the callback: %q, %v", buf[:n], err)
	}
}

// TestReadReadyEndsAtTheDeadline: a read deadline ends the wait (the relay
// relies on it and on Close to stop a parked reader), with the callback's
// own reads never blocking.
func TestReadReadyEndsAtTheDeadline(t *testing.T) {
	local, _ := tcpPair(t)
	s := NewSocket(local)
	if err := local.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	err := s.ReadReady(func() bool {
		_, err := s.Read(make([]byte, 1))
		return !errors.Is(err, ErrWouldBlock)
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadReady past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}
