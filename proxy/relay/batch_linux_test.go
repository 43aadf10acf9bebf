package relay

import (
	"testing"

	"github.com/groupwire/groupwire/internal/testutil"
)

// TestBulkIsBatched backs the batched hot path with Linux's own count of
// write syscalls. A stream relayed record by record costs a write per
// 16 KiB record, 64 per MiB, on the relay's outgoing socket alone; batched
// it costs a few. The feeder writes 256 KiB at a time (the TLS feeder
// through a batch of its own), and the drain only reads, so the bound
// leaves room for the feeder and for a relay that wakes on partial data.
func TestBulkIsBatched(t *testing.T) {
	const mib = 32
	for _, c := range []struct {
		name  string
		rig   func(testing.TB) *relayRig
		bound float64 // writes per MiB
	}{
		{"member→TLS", tcpToTLS, 32},
		{"TLS→member", tlsToTCP, 48},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.rig(t)
			chunk := make([]byte, 256<<10)
			r.move(t, chunk, 4, 1<<20) // warm up
			before := testutil.ProcIO(t, "syscw")
			r.move(t, chunk, mib*4, mib<<20)
			perMiB := float64(testutil.ProcIO(t, "syscw")-before) / mib
			t.Logf("%s: %.1f write syscalls per MiB in this process (record by record: 64 on the relay's socket alone)", c.name, perMiB)
			if perMiB > c.bound {
				t.Errorf("%s: %.1f write syscalls per MiB, want at most %.0f: the relay writes record by record again", c.name, perMiB, c.bound)
			}
		})
	}
}
