//go:build linux

package relay

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRelayCarriesEveryByteThroughFullSockets runs both legs of a link
// (member → TLS → member) with a far reader that starts late, so every
// socket on the way fills: the legs that send from inside a readiness
// callback find the socket full, leave the rest for a waiting write, and
// carry on. Writes of every size from 1 byte to 4 records, so some reads
// end mid-record and some at a record's end (where the next read is
// skipped), must arrive whole and in order.
func TestRelayCarriesEveryByteThroughFullSockets(t *testing.T) {
	memberFar, member := tcpPair(t)
	client, server := tlsPair(t)
	service, serviceFar := tcpPair(t)
	pool := NewPool()
	go func() { _, _ = Pipe(client, TCP(member), pool) }()
	go func() { _, _ = Pipe(TCP(service), server, pool) }()

	const total = 24 << 20 // more than the four sockets on the way hold
	data := make([]byte, total)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	go func() {
		for off := 0; off < total; {
			n := min(1+rng.IntN(4*BufferSize), total-off)
			if rng.IntN(4) == 0 {
				n = min(1+rng.IntN(300), total-off) // a small message
			}
			if _, err := memberFar.Write(data[off : off+n]); err != nil {
				return
			}
			off += n
		}
		_ = memberFar.CloseWrite()
	}()

	time.Sleep(300 * time.Millisecond) // not an assertion: lets the sockets fill first
	// Generous: only there so that a lost wake-up fails the test instead
	// of hanging it.
	_ = serviceFar.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(serviceFar)
	if err != nil {
		t.Fatalf("read %d of %d bytes: %v", len(got), total, err)
	}
	if len(got) != total || sha256.Sum256(got) != sha256.Sum256(data) {
		at := len(got)
		for i := range min(len(got), total) {
			if got[i] != data[i] {
				at = i
				break
			}
		}
		t.Fatalf("delivered %d bytes, want %d; first difference at byte %d", len(got), total, at)
	}
}
