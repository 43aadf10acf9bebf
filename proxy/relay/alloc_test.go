//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts mean nothing under -race: these tests exist only in builds
// without it. .ci/run runs them in its step without the race detector.

package relay

import (
	"runtime"
	"strings"
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
// each time it asks the socket for more, about 0.5 to 1.5 times per 16 KiB
// record depending on how the records split across reads, which timing
// decides. So the test counts only the allocations made by groupwire's
// own code (every allocation sampled; see allocatedByGroupwire), which
// must be none per chunk.
func TestRelayReadFromTLSAllocations(t *testing.T) {
	own, all := ownAllocsPerChunk(t, tlsToTCP(t))
	t.Logf("TLS → member: %.4f allocations per chunk, %.4f of them groupwire's own", all, own)
	if own > 0.05 {
		t.Fatalf("TLS → member relay allocates %.3f times per 16 KiB chunk in its own code, want 0", own)
	}
}

// ownAllocsPerChunk is allocsPerChunk with every allocation sampled: it
// returns the allocations per measured chunk made by groupwire's own
// (non-test) code, and all of them.
func ownAllocsPerChunk(t *testing.T, r *relayRig) (own, all float64) {
	t.Helper()
	chunk := make([]byte, BufferSize)
	r.move(t, chunk, 64, 64*BufferSize)
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	const chunks = 2000
	ownBefore, allBefore := sampledAllocs()
	r.move(t, chunk, chunks, chunks*BufferSize)
	ownAfter, allAfter := sampledAllocs()
	return float64(ownAfter-ownBefore) / chunks, float64(allAfter-allBefore) / chunks
}

// sampledAllocs returns the allocations the memory profile has counted,
// all of them and those whose allocating function is groupwire's own.
func sampledAllocs() (own, all int64) {
	runtime.GC() // the profile is as of the last completed cycle
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	records := make([]runtime.MemProfileRecord, n+64)
	n, _ = runtime.MemProfile(records, true)
	for _, rec := range records[:n] {
		all += rec.AllocObjects
		if allocatedByGroupwire(rec.Stack()) {
			own += rec.AllocObjects
		}
	}
	return own, all
}

// allocatedByGroupwire reports whether the allocation with this stack is
// groupwire's: the nearest caller that is groupwire's code or crypto/tls
// is groupwire's (non-test) code. So an allocation in a library groupwire
// calls (errors.As, fmt) counts as groupwire's, and one crypto/tls makes
// for itself does not, even with the relay further up the stack.
func allocatedByGroupwire(stack []uintptr) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "crypto/tls."):
			return false
		case strings.HasPrefix(f.Function, "github.com/groupwire/groupwire/"):
			return !strings.HasSuffix(f.File, "_test.go")
		case !more:
			return false
		}
	}
}
