// Package procs owns a sidecar process's processor count (GOMAXPROCS):
// one while the sidecar only relays, all of them while its load needs
// more than one core (a burst of new links, whose TLS handshakes are
// CPU-bound, or relaying that keeps one core busy).
//
// A sidecar mostly moves small messages on a few long-lived links. Each
// message wakes a goroutine, and with more than one P the runtime wakes a
// second thread to look for work that is not there, then puts it back to
// sleep: thread hand-offs that cost more than the bytes. On one P those
// hand-offs do not happen: 6–13% more etcd puts or Galera transactions in
// most of the A/Bs in bench/RESULTS.md, and 0.89× the CPU per message on
// 16 links. Handshakes and bulk streams need the cores, so they get them.
package procs

import (
	"context"
	"runtime"
	"time"
)

// Load is what the governor looks at.
type Load struct {
	// CPU is the cores the process used since the last look (1.0 is one
	// core busy the whole time).
	CPU float64
	// Setups is the links being set up: connections accepted or
	// captured that are not links yet (their dial, TLS handshake and
	// HELLO still running).
	Setups int
}

// Governor sets GOMAXPROCS from the load. Its zero value is not usable;
// fill in every field.
type Governor struct {
	Low, High int           // the processor counts it moves between
	Quiet     time.Duration // how long the load stays light before it goes back to Low
	// Setups returns the links being set up.
	Setups func() int
	// Changed, if set, is told of every change, with the load that caused it.
	Changed func(from, to int, load Load)
}

// busyCPU is the load, in cores, at which one P is not enough: a process
// that keeps one core three-quarters busy is queueing on it.
const busyCPU = 0.75

// busy reports whether the load needs more than one P.
func busy(l Load) bool { return l.Setups >= 2 || l.CPU >= busyCPU }

// next returns the processor count for load, at current, with the load
// light for quietFor so far.
func (g *Governor) next(current int, l Load, quietFor time.Duration) int {
	switch {
	case busy(l):
		return g.High
	case current != g.Low && quietFor >= g.Quiet:
		return g.Low
	}
	return current
}

// Run looks at the load every period and sets GOMAXPROCS, until ctx ends;
// then it puts back the count it found. Once it has set the count the Go
// runtime no longer follows a change of the container's CPU limit by
// itself, and High stays what it was at the start.
func (g *Governor) Run(ctx context.Context, period time.Duration) {
	found := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(found)
	current := g.set(found, g.Low, Load{})
	t := time.NewTicker(period)
	defer t.Stop()
	lastCPU, lastAt := cpuTime(), time.Now()
	lightSince := lastAt
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu := cpuTime()
			l := Load{CPU: (cpu - lastCPU).Seconds() / now.Sub(lastAt).Seconds(), Setups: g.Setups()}
			lastCPU, lastAt = cpu, now
			if busy(l) {
				lightSince = now
			}
			current = g.set(current, g.next(current, l, now.Sub(lightSince)), l)
		}
	}
}

// set moves GOMAXPROCS from current to n and returns n.
func (g *Governor) set(current, n int, l Load) int {
	if n == current {
		return n
	}
	runtime.GOMAXPROCS(n)
	if g.Changed != nil {
		g.Changed(current, n, l)
	}
	return n
}
