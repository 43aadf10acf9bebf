package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms until it holds, failing the test after
// limit with what was awaited. Tests use it where a bound is needed for
// correctness (something must happen), never to measure speed: choose
// limit generously for a loaded machine.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
