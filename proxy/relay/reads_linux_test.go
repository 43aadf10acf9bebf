//go:build linux

package relay

import (
	"testing"

	"github.com/groupwire/groupwire/internal/testutil"
)

// TestSmallMessageReadsPerLeg counts the read(2) calls of the process
// (/proc/self/io's syscr, which counts every call, empty or not) while
// 256-byte messages go back and forth through the four relay legs of a
// link. Each leg reads a message and then reads again to find the socket
// empty before it parks: 2 per leg, 8 per round trip, and the test's own
// 2 (its client's read and the poller's retry) make 10. A peek or any
// other extra read per message pushes it to 12 or more.
//
// The second read is not waste. A short read does not mean the kernel
// holds nothing more: a FIN or a reset that arrived with the data is the
// same readiness edge, and only a read shows it
// (TestPipeSeesTheEndThatCameWithTheData; bench/RESULTS.md has the
// experiment that skipped it).
func TestSmallMessageReadsPerLeg(t *testing.T) {
	pingPong := echoThroughLink(t)
	pingPong(t, 100) // warm up: pools, TCP windows
	const n = 2000
	before := testutil.ProcIO(t, "syscr")
	pingPong(t, n)
	perMessage := float64(testutil.ProcIO(t, "syscr")-before) / n
	t.Logf("read(2) calls per round trip: %.2f", perMessage)
	// The slack is for the odd wake-up that finds nothing.
	if perMessage >= 11.5 {
		t.Fatalf("%.2f read(2) calls per round trip through the four relay legs, want 10: a leg reads more than twice per message", perMessage)
	}
}
