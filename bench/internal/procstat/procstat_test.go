package procstat

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSessionUsageOfThisProcess reads this test's own session from /proc.
func TestSessionUsageOfThisProcess(t *testing.T) {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	u, err := SessionUsage(sid)
	if err != nil {
		t.Fatal(err)
	}
	rss, err := VMRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.Procs < 1 || u.RSSKiB < rss || rss <= 0 {
		t.Errorf("session %d: %+v, own RSS %d KiB", sid, u, rss)
	}
	if _, err := SessionUsage(1 << 30); err == nil {
		t.Error("a session with no process was not an error")
	}
}

// TestCPUTimesGrowWithWork: this process keeps every CPU busy for a
// while between two samples; its session's CPU time grows by most of what
// it burned, and the host's busy time by at least half of every CPU's
// time (the host counts the others' work too; counting idle time instead
// would find almost none).
func TestCPUTimesGrowWithWork(t *testing.T) {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	u0, h0 := sample(t, sid)
	start := time.Now()
	burnAll(300 * time.Millisecond)
	wall := time.Since(start)
	u1, h1 := sample(t, sid)
	if got := u1 - u0; got < 0.2 {
		t.Errorf("the session's CPU grew by %.2f s over %v of burning, want at least 0.2 s", got, wall)
	}
	all := time.Duration(runtime.NumCPU()) * wall
	if got := h1 - h0; got < all/2 {
		t.Errorf("the host's busy time grew by %v with every CPU burning for %v, want at least half of %v", got, wall, all)
	}
}

func sample(t *testing.T, sid int) (float64, time.Duration) {
	t.Helper()
	u, err := SessionUsage(sid)
	if err != nil {
		t.Fatal(err)
	}
	h, err := HostBusy()
	if err != nil {
		t.Fatal(err)
	}
	return u.CPUSeconds, h
}

// burnAll spins a goroutine per CPU for d; the sum it returns keeps the
// loops from being optimised away.
func burnAll(d time.Duration) int64 {
	var sink atomic.Int64
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for end := time.Now().Add(d); time.Now().Before(end); {
				for i := range 100_000 {
					sink.Add(int64(i))
				}
			}
		})
	}
	wg.Wait()
	return sink.Load()
}
