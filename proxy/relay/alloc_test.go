//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts mean nothing under -race: these tests exist only in builds
// without it. .ci/run runs them in its step without the race detector.

package relay

import (
	"runtime"
	"testing"
)

// allocsPerChunk moves warm-up chunks and then 2,000 16 KiB chunks through
// the rig, and returns the process's allocations per measured chunk: the
// relay loop, its pool and crypto/tls on the relay's side.
func allocsPerChunk(t *testing.T, r *relayRig) float64 {
	t.Helper()
	chunk := make([]byte, BufferSize)
	r.move(t, chunk, 64, 64*BufferSize)
	const chunks = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r.move(t, chunk, chunks, chunks*BufferSize)
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / chunks
}

// TestRelayWriteToTLSAllocatesNothing pins the member → TLS direction at
// zero allocations per 16 KiB chunk. The drain goroutine of move and the
// GC allocate a few times per call; a per-chunk allocation shows as ≥ 1.
func TestRelayWriteToTLSAllocatesNothing(t *testing.T) {
	perChunk := allocsPerChunk(t, tcpToTLS(t))
	t.Logf("member → TLS: %.4f allocations per chunk", perChunk)
	if perChunk > 0.05 {
		t.Fatalf("member → TLS relay allocates %.3f times per 16 KiB chunk, want ~0", perChunk)
	}
}

// TestRelayReadFromTLSAllocations pins the TLS → member direction at
// crypto/tls's own cost: tls.Conn.Read allocates an atLeastReader (16 B)
// each time it reads the socket, about 0.5 times per 16 KiB record. The
// relay adds nothing; an allocation of its own per chunk would push the
// figure to 1.5 or more.
func TestRelayReadFromTLSAllocations(t *testing.T) {
	perChunk := allocsPerChunk(t, tlsToTCP(t))
	t.Logf("TLS → member: %.4f allocations per chunk", perChunk)
	if perChunk > 0.75 {
		t.Fatalf("TLS → member relay allocates %.3f times per 16 KiB chunk, want about 0.5 (crypto/tls's own)", perChunk)
	}
}
