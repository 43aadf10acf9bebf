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
// still fail while its sidecar picks up the new certificate (the watch
// reads it 150 ms after the write; a worker redials 100 ms after a break).
const settle = 1500 * time.Millisecond

// cutBound bounds how long a revocation may take to cut the revoked
// member off: the watch reads the CRL 150 ms after the write settles and
// cuts at once (about 155 ms measured here); 5 s is for a loaded machine.
// A cut slower than this is a failed revocation, not a slow one.
const cutBound = 5 * time.Second

// Bounds on the process over the run, after warmUp: a link that leaks a
// goroutine or a buffer shows up as growth, since links churn hundreds of
// times a minute. The slack is for the runtime's own and the GC's swings.
const (
	warmUp          = 5 * time.Second
	goroutineGrowth = 20       // the second half's peak over the first's
	rssGrowth       = 32 << 20 // likewise, bytes
	rssCeiling      = 512 << 20
)

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

// window is one revocation: from the CRL write to the re-issue, and the
// pairs of the revoked member that carried checked traffic again after it.
type window struct {
	revoked, reissued time.Time
	recovered         map[string]bool
}

type sample struct {
	at         time.Duration
	rss        int64
	goroutines int
}

func newReport() *report { return &report{start: time.Now()} }

func (r *report) verified(pair string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := len(r.windows) - 1; w >= 0 && !r.windows[w].reissued.IsZero() && time.Since(r.windows[w].reissued) > settle {
		r.windows[w].recovered[pair] = true
	}
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
	r.windows = append(r.windows, window{revoked: t, recovered: map[string]bool{}})
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
// came back wrong, traffic flowed, every revocation cut its member off
// within cutBound, every pair of the revoked member carried traffic again
// after each re-issue, and the process did not grow.
func (r *report) ok() bool {
	for _, d := range r.cutLatencies() {
		if d < 0 || d > cutBound {
			return false
		}
	}
	return len(r.unexpected()) == 0 && r.corrupt == 0 && r.bytes > 0 && r.messages > 0 &&
		len(r.unrecovered()) == 0 && r.growth() == ""
}

// unrecovered names, per revocation re-issued long enough before the end
// (or the next revocation), the revoked member's pairs that never carried
// checked traffic again.
func (r *report) unrecovered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for i, w := range r.windows {
		if w.reissued.IsZero() || time.Since(w.reissued) < settle+2*time.Second {
			continue // the run or the next revocation came too soon to tell
		}
		for _, pair := range revokedPairs() {
			if !w.recovered[pair] {
				out = append(out, fmt.Sprintf("revocation %d: %s", i+1, pair))
			}
		}
	}
	return out
}

// revokedPairs are the worker pairs that involve revokedMember.
func revokedPairs() []string {
	return []string{"mysql-1→" + revokedMember, "mysql-2→" + revokedMember, revokedMember + "→mysql-1", revokedMember + "→mysql-2"}
}

// growth says how the process grew past its bounds, or "" if it did not.
func (r *report) growth() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first, second sample
	var n int
	for _, s := range r.samples {
		if s.at < warmUp {
			continue
		}
		n++
		half := &first
		if s.at > (r.samples[len(r.samples)-1].at+warmUp)/2 {
			half = &second
		}
		half.rss, half.goroutines = max(half.rss, s.rss), max(half.goroutines, s.goroutines)
	}
	switch {
	case n < 4:
		return ""
	case max(first.rss, second.rss) > rssCeiling:
		return fmt.Sprintf("RSS reached %d MiB (ceiling %d MiB)", max(first.rss, second.rss)>>20, rssCeiling>>20)
	case second.rss > first.rss+rssGrowth:
		return fmt.Sprintf("RSS peak grew from %d MiB in the first half to %d MiB in the second", first.rss>>20, second.rss>>20)
	case second.goroutines > first.goroutines+goroutineGrowth:
		return fmt.Sprintf("goroutine peak grew from %d in the first half to %d in the second", first.goroutines, second.goroutines)
	}
	return ""
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
