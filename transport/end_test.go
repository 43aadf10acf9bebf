package transport

import (
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// linkPair opens one VERIFY_CA link and returns both ends of it.
func linkPair(t *testing.T) (dialed, accepted *Link) {
	t.Helper()
	server, client, _ := memberPolicies(t, VerifyCA)
	addr, results := startAcceptorHolding(t, server)
	d := NewDialer(client, "mysql-2", Peer{Name: "mysql-1", Address: addr, Identity: "mysql-1"}, LinkOptions{HandshakeTimeout: 5 * time.Second})
	link, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	if err := link.AwaitAccept(); err != nil {
		t.Fatal(err)
	}
	r := <-results
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.link.Close() })
	return link, r.link
}

// startAcceptorHolding accepts links and hands them to the test untouched.
func startAcceptorHolding(t *testing.T, policies ...*Policy) (string, <-chan acceptResult) {
	t.Helper()
	held := make(chan acceptResult, 1)
	addr, results := startAcceptorConnecting(t, func(context.Context, Hello) error { return nil }, policies...)
	go func() { held <- <-results }()
	return addr, held
}

// readToEnd reads c until an error, with a generous deadline.
func readToEnd(t *testing.T, l *Link) error {
	t.Helper()
	l.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, l.Conn)
	if err == nil {
		err = io.EOF // io.Copy hides the EOF
	}
	return err
}

// TestEndOfStreamTellsCloseNotifyFromAbort measures both endings of a TLS
// link as crypto/tls reports them: a close_notify and a socket that simply
// ends both surface as io.EOF, and EndOfStream tells them apart.
func TestEndOfStreamTellsCloseNotifyFromAbort(t *testing.T) {
	t.Run("close_notify", func(t *testing.T) {
		dialed, accepted := linkPair(t)
		if _, err := dialed.Conn.Write([]byte("last words")); err != nil {
			t.Fatal(err)
		}
		if err := dialed.Conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		dialed.Raw.CloseWrite()
		if err := readToEnd(t, accepted); !errors.Is(err, io.EOF) {
			t.Fatalf("read: %v, want io.EOF", err)
		}
		if err := accepted.EndOfStream(nil); err != nil {
			t.Fatalf("EndOfStream after close_notify: %v, want nil", err)
		}
	})
	t.Run("socket ends without close_notify", func(t *testing.T) {
		// The accepting side has read all its peer sent, so closing its
		// socket sends a FIN and no alert: what a SIGKILLed sidecar's kernel
		// sends. (A socket closed with unread input sends a reset instead.)
		dialed, accepted := linkPair(t)
		if _, err := accepted.Conn.Write([]byte("cut short")); err != nil {
			t.Fatal(err)
		}
		accepted.Raw.Close()
		err := readToEnd(t, dialed)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("read: %v; crypto/tls was expected to report io.EOF here", err)
		}
		if err := dialed.EndOfStream(nil); !errors.Is(err, ErrNoCloseNotify) {
			t.Fatalf("EndOfStream: %v, want ErrNoCloseNotify", err)
		}
	})
	t.Run("socket ends inside a record", func(t *testing.T) {
		// An application-data record header promising 100 bytes, 10 of
		// them sent, then the socket ends: crypto/tls reports
		// io.ErrUnexpectedEOF.
		dialed, accepted := linkPair(t)
		accepted.Raw.Write(append([]byte{23, 3, 3, 0, 100}, make([]byte, 10)...))
		accepted.Raw.Close()
		err := readToEnd(t, dialed)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read: %v; crypto/tls was expected to report io.ErrUnexpectedEOF here", err)
		}
		if got := dialed.EndOfStream(err); !errors.Is(got, ErrNoCloseNotify) {
			t.Fatalf("EndOfStream(%v) = %v, want ErrNoCloseNotify", err, got)
		}
	})
	t.Run("Abort resets", func(t *testing.T) {
		dialed, accepted := linkPair(t)
		// The far side must see a reset, not a FIN without close_notify:
		// a reset is what reaches the member as an abort even where the
		// sidecar only relays bytes (DISABLED links are spliced).
		dialed.Abort()
		err := readToEnd(t, accepted)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after Abort: %v, want ECONNRESET", err)
		}
	})
}
