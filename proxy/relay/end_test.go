package relay

import (
	"errors"
	"io"
	"testing"
	"time"
)

// TestPipeNeverPassesAnAbortOffAsAnEnd: when the source's EndOfStream says its
// end of stream was cut short, Pipe returns that error and leaves the
// destination open, so the caller can reset it; when it says the end was
// clean, the destination is half-closed and its reader sees EOF.
func TestPipeNeverPassesAnAbortOffAsAnEnd(t *testing.T) {
	cut := errors.New("peer aborted")
	for _, tc := range []struct {
		name string
		end  error
	}{{"clean", nil}, {"aborted", cut}} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tlsPair(t)
			member, memberFar := tcpPair(t)
			server.EndOfStream = func(err error) error { return errors.Join(err, tc.end) }
			done := make(chan error, 1)
			go func() { _, err := Pipe(TCP(member), server, NewPool()); done <- err }()
			if _, err := client.Conn.Write([]byte("payload")); err != nil {
				t.Fatal(err)
			}
			client.closeWrite() // close_notify and FIN: crypto/tls reads io.EOF
			if err := <-done; !errors.Is(err, tc.end) || (tc.end == nil) != (err == nil) {
				t.Fatalf("Pipe = %v, want %v", err, tc.end)
			}
			memberFar.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			got, err := io.ReadAll(memberFar)
			if string(got) != "payload" {
				t.Fatalf("member got %q", got)
			}
			if halfClosed := err == nil; halfClosed != (tc.end == nil) {
				t.Fatalf("member read ended with %v; want EOF only for a clean end", err)
			}
		})
	}
}
