package proxy

import (
	"fmt"
	"testing"
	"time"
)

// TestLogLimiter: a burst per reason, source and period is let through,
// the rest is counted and handed over once the period ends, and neither
// another reason nor another source address shares the flooded budget.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter()
	t0 := time.Unix(1000, 0)
	shown := 0
	for i := range 100 {
		if l.allow("limit", fmt.Sprintf("127.0.0.99:%d", 40000+i), t0) {
			shown++
		}
	}
	if shown != logBurst {
		t.Fatalf("shown %d of 100 from one address (many ports), want %d", shown, logBurst)
	}
	if !l.allow("revoked", "127.0.0.99:1", t0) {
		t.Fatal("another reason from the flooding address was suppressed by the flood")
	}
	if !l.allow("limit", "127.0.0.13:1", t0) {
		t.Fatal("the same reason from another address was suppressed by the flood")
	}
	if got := l.flush(t0.Add(logPeriod / 2)); len(got) != 0 {
		t.Fatalf("flushed %v before the period ended", got)
	}
	got := l.flush(t0.Add(logPeriod))
	if len(got) != 1 || got[0] != (suppressedCount{"limit", "127.0.0.99", 100 - logBurst}) {
		t.Fatalf("flush = %v, want limit from 127.0.0.99: %d", got, 100-logBurst)
	}
	if !l.allow("limit", "127.0.0.99:1", t0.Add(logPeriod)) {
		t.Fatal("the next period does not let lines through again")
	}
}

// TestLogLimiterIsBounded: past maxLogSources keys, new sources share
// their reason's overflow entry, which still lets the first lines of a
// reason through and counts the rest under "other".
func TestLogLimiterIsBounded(t *testing.T) {
	l := newLogLimiter()
	t0 := time.Unix(1000, 0)
	for i := range maxLogSources {
		l.allow("handshake timeout", fmt.Sprintf("10.%d.%d.1:1", i/256, i%256), t0)
	}
	shown := 0
	for i := range 100 {
		if l.allow("revoked", fmt.Sprintf("10.200.%d.1:1", i), t0) {
			shown++
		}
	}
	if len(l.windows) != maxLogSources+1 {
		t.Fatalf("table holds %d keys, bound %d plus one overflow entry", len(l.windows), maxLogSources)
	}
	if shown != logBurst {
		t.Fatalf("past the bound, %d of 100 new-source lines shown, want the overflow entry's burst %d", shown, logBurst)
	}
	got := l.flush(t0.Add(logPeriod))
	if len(got) != 1 || got[0] != (suppressedCount{"revoked", overflowSrc, 100 - logBurst}) {
		t.Fatalf("flush = %v, want revoked from %s: %d", got, overflowSrc, 100-logBurst)
	}
	if len(l.windows) != 0 {
		t.Fatalf("%d keys left after their period ended", len(l.windows))
	}
}
