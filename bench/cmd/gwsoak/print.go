package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// print writes the report: totals, the verdicts, the revocations and the
// process's RSS and goroutines over time.
func (r *report) print(w io.Writer, o options) {
	bad, cuts, unrecovered, growth := r.unexpected(), r.cutLatencies(), r.unrecovered(), r.growth()
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(w, "gwsoak: %v, 3 members, 6 message links and 2 bulk links, certificates rotated every %v (%d times), %s revoked every %v\n",
		elapsed, o.rotate, r.rotations, revokedMember, o.revoke)
	fmt.Fprintf(w, "verified:            %d MiB of bulk echo, %d messages\n", r.bytes>>20, r.messages)
	fmt.Fprintf(w, "corrupted bytes:     %d\n", r.corrupt)
	fmt.Fprintf(w, "broken, expected:    %d (links of %s while revoked)\n", len(r.breaks)-len(bad), revokedMember)
	fmt.Fprintf(w, "broken, unexpected:  %d\n", len(bad))
	for i, b := range bad {
		if i == 10 {
			fmt.Fprintf(w, "  ... and %d more\n", len(bad)-10)
			break
		}
		fmt.Fprintf(w, "  %v %s: %v\n", b.at.Sub(r.start).Round(time.Millisecond), b.pair, b.err)
	}
	printCuts(w, cuts)
	r.printSamples(w)
	for _, u := range unrecovered {
		fmt.Fprintf(w, "NOT recovered after re-issue: %s\n", u)
	}
	if growth != "" {
		fmt.Fprintf(w, "process growth: %s\n", growth)
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// printCuts shows how long each revocation took to cut the member off:
// every one for a short run, the spread for a long one.
func printCuts(w io.Writer, cuts []time.Duration) {
	sorted := slices.Clone(cuts)
	slices.Sort(sorted)
	if missed := len(sorted) - len(slices.DeleteFunc(slices.Clone(sorted), func(d time.Duration) bool { return d < 0 })); missed > 0 {
		fmt.Fprintf(w, "revocations:         %d, of which %d did NOT cut %s off\n", len(cuts), missed, revokedMember)
	}
	if len(cuts) > 5 {
		fmt.Fprintf(w, "revocations:         %d, %s cut off after min %v, median %v, max %v\n", len(cuts), revokedMember,
			sorted[0].Round(time.Millisecond), sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
		return
	}
	for i, d := range cuts {
		if d >= 0 {
			fmt.Fprintf(w, "revocation %d:        %s cut off %v after the CRL was written (bound %v)\n", i+1, revokedMember, d.Round(time.Millisecond), cutBound)
		}
	}
}

// printSamples shows RSS and goroutines at the start, every tenth of the
// run, and at the end, with the extremes.
func (r *report) printSamples(w io.Writer) {
	if len(r.samples) == 0 {
		return
	}
	step := max(len(r.samples)/10, 1)
	minRSS, maxRSS, maxG := r.samples[0].rss, r.samples[0].rss, 0
	for _, s := range r.samples {
		minRSS, maxRSS, maxG = min(minRSS, s.rss), max(maxRSS, s.rss), max(maxG, s.goroutines)
	}
	fmt.Fprintf(w, "RSS MiB (min %d, max %d) and goroutines (max %d) over time:\n", minRSS>>20, maxRSS>>20, maxG)
	for i := 0; i < len(r.samples); i += step {
		s := r.samples[i]
		fmt.Fprintf(w, "  %6v  %4d MiB  %4d goroutines\n", s.at.Round(time.Second), s.rss>>20, s.goroutines)
	}
	last := r.samples[len(r.samples)-1]
	fmt.Fprintf(w, "  %6v  %4d MiB  %4d goroutines (end)\n", last.at.Round(time.Second), last.rss>>20, last.goroutines)
}
