package main

import (
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

func TestParsePids(t *testing.T) {
	if got, err := parsePids("12,,34"); err != nil || len(got) != 2 || got[0] != 12 || got[1] != 34 {
		t.Fatalf("parsePids(12,,34) = %v, %v", got, err)
	}
	if _, err := parsePids("12,x"); err == nil {
		t.Fatal("parsePids accepted a name that is not a pid")
	}
}
