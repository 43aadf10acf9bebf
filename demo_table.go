package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/proxy"
)

// demoTraffic sends a message across every ordered pair on every channel
// each interval and counts what was echoed; the demo's table shows it.
type demoTraffic struct {
	mu       sync.Mutex
	ok, fail int
}

func (d *demoTraffic) run(ctx context.Context, g *localgroup.Group, interval time.Duration) {
	for round := 1; ctx.Err() == nil; round++ {
		for _, from := range g.Members {
			for _, to := range g.Members {
				for _, ch := range g.Channels {
					if from.Name == to.Name {
						continue
					}
					_, err := g.Ping(ctx, from.Name, to.Name, ch, fmt.Sprintf("hello #%d from %s", round, from.Name))
					d.count(err == nil)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

func (d *demoTraffic) count(ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		d.ok++
	} else {
		d.fail++
	}
}

func (d *demoTraffic) totals() (int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ok, d.fail
}

// pairStates is every sidecar's view of its pairs: member → peer →
// channel → the pair's status.
type pairStates map[string]map[string]map[string]proxy.PeerStatus

func readPairs(r *localgroup.Running) pairStates {
	out := pairStates{}
	for name, sc := range r.Sidecars {
		out[name] = map[string]map[string]proxy.PeerStatus{}
		for _, p := range sc.Status().Peers {
			if out[name][p.Peer] == nil {
				out[name][p.Peer] = map[string]proxy.PeerStatus{}
			}
			out[name][p.Peer][p.Channel] = p
		}
	}
	return out
}

// cell is one sidecar's view of one peer, every channel: "up up".
func (ps pairStates) cell(member, peer string, channels []string) string {
	var parts []string
	for _, ch := range channels {
		p, ok := ps[member][peer][ch]
		switch {
		case !ok:
			parts = append(parts, "·")
		case p.Up:
			parts = append(parts, "up")
		case p.LastProbe.IsZero():
			parts = append(parts, "..")
		default:
			parts = append(parts, "DOWN")
		}
	}
	return strings.Join(parts, " ")
}

// writeTable draws the pair matrix: a row per sidecar, a column per peer,
// each cell the pair's state on every channel.
func writeTable(w io.Writer, g *localgroup.Group, ps pairStates, ok, fail int, elapsed time.Duration) {
	fmt.Fprintf(w, "pairs after %v (rows: the sidecar; cells: %s)\n", elapsed.Round(time.Second), strings.Join(g.Channels, " "))
	fmt.Fprintf(w, "%-10s", "")
	for _, m := range g.Members {
		fmt.Fprintf(w, "%-14s", m.Name)
	}
	fmt.Fprintln(w)
	for _, m := range g.Members {
		fmt.Fprintf(w, "%-10s", m.Name)
		for _, peer := range g.Members {
			c := "-"
			if peer.Name != m.Name {
				c = ps.cell(m.Name, peer.Name, g.Channels)
			}
			fmt.Fprintf(w, "%-14s", c)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "messages echoed: %d, failed: %d\n", ok, fail)
	writeDown(w, ps)
}

// writeDown lists every pair that is down now with its last error, under
// the table that a terminal redraws: the reason stays on screen for as
// long as the pair is down, not just for the one redraw when it changed.
func writeDown(w io.Writer, ps pairStates) {
	var lines []string
	for member, peers := range ps {
		for peer, chans := range peers {
			for ch, p := range chans {
				if !p.Up && !p.LastProbe.IsZero() {
					lines = append(lines, fmt.Sprintf("  %s → %s [%s] DOWN: %s", member, peer, ch, p.LastError))
				}
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	slices.Sort(lines)
	fmt.Fprintln(w, "down now:")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// writeLine is the table as one line, for output that is not a terminal.
func writeLine(w io.Writer, g *localgroup.Group, ps pairStates, ok, fail int, elapsed time.Duration) {
	var parts []string
	for _, m := range g.Members {
		for _, peer := range g.Members {
			if peer.Name != m.Name {
				parts = append(parts, fmt.Sprintf("%s→%s %s", m.Name, peer.Name, ps.cell(m.Name, peer.Name, g.Channels)))
			}
		}
	}
	fmt.Fprintf(w, "%5.1fs  %s  | echoed %d, failed %d\n", elapsed.Seconds(), strings.Join(parts, "  "), ok, fail)
}

// writeChanges prints a line for every pair whose state changed since
// before, with the reason a pair went down.
func writeChanges(w io.Writer, before, now pairStates) {
	for member, peers := range now {
		for peer, chans := range peers {
			for ch, p := range chans {
				was := before[member][peer][ch]
				if p.Up == was.Up && !p.LastProbe.IsZero() == !was.LastProbe.IsZero() {
					continue
				}
				if p.Up && !was.LastProbe.IsZero() { // back up; the first contact says nothing
					fmt.Fprintf(w, "        %s → %s [%s] up again\n", member, peer, ch)
				} else if !p.Up && !p.LastProbe.IsZero() {
					fmt.Fprintf(w, "        %s → %s [%s] DOWN: %s\n", member, peer, ch, p.LastError)
				}
			}
		}
	}
}
