package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// plainRefuser accepts one connection on a loopback listener, reads what
// the dialer sends first (a TLS ClientHello), answers with a plaintext
// REFUSE in one write as a DISABLED acceptor would, half-closes, and drains
// until the dialer closes, so no RST races the REFUSE.
func plainRefuser(t *testing.T, r Refuse) (addr string, wait func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		first := make([]byte, 1)
		if _, err := io.ReadFull(c, first); err != nil || first[0] != 0x16 {
			t.Errorf("acceptor read %x, %v; want a TLS handshake record", first, err)
			return
		}
		if _, err := c.Write(AppendRefuse(nil, r)); err != nil {
			t.Errorf("write REFUSE: %v", err)
			return
		}
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
	}()
	return ln.Addr().String(), func() { <-done }
}

// TestReplayConnRecoversRefuseAfterClientHello runs the dialer's side of a
// mode mismatch over real TCP and real crypto/tls: the TLS handshake fails
// with a RecordHeaderError, and the whole REFUSE is read back through
// ReplayConn although crypto/tls had already swallowed it.
func TestReplayConnRecoversRefuseAfterClientHello(t *testing.T) {
	want := Refuse{Code: RefuseModeMismatch, Mode: Disabled, Reason: "this member runs DISABLED on channel group"}
	addr, wait := plainRefuser(t, want)
	defer wait()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	rc := NewReplayConn(raw)
	tc := tls.Client(rc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"gw1/group"}})
	herr := tc.HandshakeContext(ctx)
	var rh tls.RecordHeaderError
	if !errors.As(herr, &rh) || rh.Conn == nil || string(rh.RecordHeader[:3]) != "GW\x01" {
		t.Fatalf("handshake error = %v, want a tls.RecordHeaderError carrying the frame header", herr)
	}

	// crypto/tls read the whole frame ahead: the socket holds only EOF now,
	// so the five header bytes alone are not enough.
	if _, _, err := ReadFrame(io.MultiReader(bytes.NewReader(rh.RecordHeader[:]), raw)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadFrame of the header and the socket = %v; if crypto/tls stopped reading ahead, ReplayConn may be unneeded", err)
	}

	typ, body, err := ReadFrame(rc.Replay())
	if err != nil || typ != FrameRefuse {
		t.Fatalf("ReadFrame(Replay()) = %v, %v", typ, err)
	}
	got, err := ParseRefuse(body)
	if err != nil || got != want {
		t.Fatalf("ParseRefuse = %+v, %v; want %+v", got, err, want)
	}
}

func TestReplayConnForget(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = b.Write([]byte("abcdef")) }()
	rc := NewReplayConn(a)
	buf := make([]byte, 3)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	rc.Forget()
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = b.Write([]byte("g")); b.Close() }()
	got, _ := io.ReadAll(rc.Replay())
	if string(got) != "g" {
		t.Errorf("after Forget, Replay gave %q, want only the unread %q", got, "g")
	}
}
