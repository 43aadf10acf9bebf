package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// settle is how long after a re-issue links of the revoked member may
// still fail while the peers pick up its new certificate.
const settle = 3 * time.Second

// report collects what the soak saw.
type report struct {
	mu        sync.Mutex
	start     time.Time
	bytes     int64
	messages  int64
	corrupt   int
	rotations int
	breaks    []breakEvent
	windows   []window
	samples   []sample
	notes     []string
}

type breakEvent struct {
	from, to, pair string
	at             time.Time
	err            error
}

// window is one revocation: from the CRL write to the re-issue.
type window struct{ revoked, reissued time.Time }

type sample struct {
	at         time.Duration
	rss        int64
	goroutines int
}

func newReport() *report { return &report{start: time.Now()} }

func (r *report) verified(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 64 {
		r.bytes += int64(n)
	} else {
		r.messages++
	}
}

func (r *report) corrupted(pair string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt += n
	r.notes = append(r.notes, fmt.Sprintf("%s: %d bytes corrupted", pair, n))
}

func (r *report) broken(from, to, pair string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.breaks = append(r.breaks, breakEvent{from: from, to: to, pair: pair, at: time.Now(), err: err})
}

func (r *report) rotated() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotations++
}

func (r *report) revokedAt(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.windows = append(r.windows, window{revoked: t})
}

func (r *report) reissuedAt(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.windows[len(r.windows)-1].reissued = t
}

func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// expected reports whether a break falls in a revocation window of a pair
// that involves the revoked member.
func (r *report) expected(b breakEvent) bool {
	if b.from != revokedMember && b.to != revokedMember {
		return false
	}
	for _, w := range r.windows {
		end := w.reissued.Add(settle)
		if !b.at.Before(w.revoked) && (w.reissued.IsZero() || b.at.Before(end)) {
			return true
		}
	}
	return false
}

// unexpected returns the breaks of links that should have stayed up.
func (r *report) unexpected() []breakEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []breakEvent
	for _, b := range r.breaks {
		if !r.expected(b) {
			out = append(out, b)
		}
	}
	return out
}

// cutLatencies returns, per revocation, how long until the first link of
// the revoked member broke.
func (r *report) cutLatencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, w := range r.windows {
		first := time.Duration(-1)
		for _, b := range r.breaks {
			if (b.from == revokedMember || b.to == revokedMember) && !b.at.Before(w.revoked) && (first < 0 || b.at.Sub(w.revoked) < first) {
				first = b.at.Sub(w.revoked)
			}
		}
		out = append(out, first)
	}
	return out
}

// ok is the verdict: no link broke that should have stayed up, no byte
// came back wrong, traffic flowed, and every revocation cut its member off.
func (r *report) ok() bool {
	for _, d := range r.cutLatencies() {
		if d < 0 {
			return false
		}
	}
	return len(r.unexpected()) == 0 && r.corrupt == 0 && r.bytes > 0 && r.messages > 0
}

// sampleProcess records RSS and goroutines every second until ctx ends.
func sampleProcess(ctx context.Context, r *report) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s := sample{at: time.Since(r.start), rss: rss(), goroutines: runtime.NumGoroutine()}
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// rss is this process's resident set in bytes (VmRSS), 0 if unknown.
func rss() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib << 10
		}
	}
	return 0
}
