package proxy

import (
	"testing"
	"time"
)

// TestLogLimiter: a burst per reason and period is let through, the rest is
// counted and handed over once the period ends, and reasons do not share
// a budget.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter()
	t0 := time.Unix(1000, 0)
	shown := 0
	for range 100 {
		if l.allow("limit", t0) {
			shown++
		}
	}
	if shown != logBurst {
		t.Fatalf("shown %d of 100, want %d", shown, logBurst)
	}
	if !l.allow("handshake", t0) {
		t.Fatal("another reason was suppressed by the first one's flood")
	}
	if got := l.flush(t0.Add(logPeriod / 2)); len(got) != 0 {
		t.Fatalf("flushed %v before the period ended", got)
	}
	got := l.flush(t0.Add(logPeriod))
	if len(got) != 1 || got[0] != (suppressedCount{"limit", 100 - logBurst}) {
		t.Fatalf("flush = %v, want limit: %d", got, 100-logBurst)
	}
	if !l.allow("limit", t0.Add(logPeriod)) {
		t.Fatal("the next period does not let lines through again")
	}
}
