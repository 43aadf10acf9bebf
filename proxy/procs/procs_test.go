package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestNext: two links being set up or three-quarters of a core busy
// raise the count to High at once; it goes back to Low only once the load
// has been light for Quiet.
func TestNext(t *testing.T) {
	g := &Governor{Low: 1, High: 4, Quiet: 5 * time.Second}
	for _, tc := range []struct {
		name     string
		current  int
		load     Load
		quietFor time.Duration
		want     int
	}{
		{"idle stays low", 1, Load{CPU: 0.1}, time.Hour, 1},
		{"one link set up is not a burst", 1, Load{Setups: 1}, 0, 1},
		{"two links set up at once raise", 1, Load{Setups: 2}, 0, 4},
		{"a busy core raises", 1, Load{CPU: 0.8}, 0, 4},
		{"just under busy stays", 1, Load{CPU: 0.7}, 0, 1},
		{"light, not for long: stays high", 4, Load{CPU: 0.2}, 4 * time.Second, 4},
		{"light for Quiet: back to low", 4, Load{CPU: 0.2}, 5 * time.Second, 1},
		{"busy at high stays high", 4, Load{CPU: 1.5}, time.Hour, 4},
	} {
		if got := g.next(tc.current, tc.load, tc.quietFor); got != tc.want {
			t.Errorf("%s: next(%d, %+v, %v) = %d, want %d", tc.name, tc.current, tc.load, tc.quietFor, got, tc.want)
		}
	}
}

// TestRunSetsTheRuntimesCount runs a Governor on this process: it starts
// at Low, a burst of link set-ups takes GOMAXPROCS to High, a quiet spell
// back to Low, and when it stops the count it found is put back.
func TestRunSetsTheRuntimesCount(t *testing.T) {
	found := runtime.GOMAXPROCS(2) // so that the first move, to Low, is a change
	defer runtime.GOMAXPROCS(found)
	var setups atomic.Int64
	changes := make(chan int, 16)
	g := &Governor{Low: 1, High: 3, Quiet: 100 * time.Millisecond,
		Setups:  func() int { return int(setups.Load()) },
		Changed: func(_, to int, _ Load) { changes <- to }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx, 10*time.Millisecond); close(done) }()
	want := func(n int) {
		t.Helper()
		select {
		case got := <-changes:
			if got != n || runtime.GOMAXPROCS(0) != n {
				t.Fatalf("changed to %d (GOMAXPROCS %d), want %d", got, runtime.GOMAXPROCS(0), n)
			}
		case <-time.After(10 * time.Second): // generous: it looks every 10 ms
			t.Fatalf("GOMAXPROCS never went to %d", n)
		}
	}
	want(1)
	setups.Store(2)
	want(3)
	setups.Store(0)
	want(1)
	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("GOMAXPROCS %d after Run returned, want the 2 it found", got)
	}
}
