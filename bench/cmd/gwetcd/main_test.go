package main

import (
	"os"
	"testing"
	"time"
)

// TestScheduleSpreadsThePuts checks the paced schedule: each writer's puts
// are every writers/rate apart, and the writers take turns, so that the
// total is the rate asked for, evenly spread.
func TestScheduleSpreadsThePuts(t *testing.T) {
	start := time.Unix(1000, 0)
	every := 8 * time.Millisecond // 8 writers at 1,000 puts/s
	w3 := schedule{start: start.Add(3 * every / 8), every: every}
	if due, paced := w3.due(2); !paced || due != start.Add(19*time.Millisecond) {
		t.Fatalf("writer 3's third put is due at %v (paced %v), want start+19ms", due.Sub(start), paced)
	}
	if _, paced := (schedule{}).due(5); paced {
		t.Fatal("the zero schedule paces; it should put as fast as acknowledged")
	}
}

// TestSampleCPUCountsTheTunnels checks that a tunnel's CPU time is read
// from /proc: this process, named as the tunnel, burns CPU between two
// samples, and both its time and the host's grow by at least most of it
// (the clock tick is 10 ms).
func TestSampleCPUCountsTheTunnels(t *testing.T) {
	pids := []int{os.Getpid()}
	before, err := sampleCPU(pids)
	if err != nil {
		t.Fatal(err)
	}
	burn(before.tunnels + 300*time.Millisecond)
	after, err := sampleCPU(pids)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.tunnels - before.tunnels; got < 200*time.Millisecond {
		t.Errorf("the tunnel's CPU grew by %v, want about 300ms", got)
	}
	if got := after.host - before.host; got < 200*time.Millisecond {
		t.Errorf("the host's busy time grew by %v, want at least the tunnel's", got)
	}
}

// burn spins until this process has used until of CPU time, or for
// 10 s if it never reads that much.
func burn(until time.Duration) (sum int) {
	for giveUp := time.Now().Add(10 * time.Second); time.Now().Before(giveUp); {
		for i := range 1_000_000 {
			sum += i
		}
		used, err := processCPU(os.Getpid())
		if err != nil || used >= until {
			return sum
		}
	}
	return sum
}

func TestParsePids(t *testing.T) {
	if got, err := parsePids("12,,34"); err != nil || len(got) != 2 || got[0] != 12 || got[1] != 34 {
		t.Fatalf("parsePids(12,,34) = %v, %v", got, err)
	}
	if _, err := parsePids("12,x"); err == nil {
		t.Fatal("parsePids accepted a name that is not a pid")
	}
}
