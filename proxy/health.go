package proxy

import (
	"context"
	"crypto/x509"
	"sort"
	"sync"
	"time"
)

// pairHealth is what this sidecar knows of one peer on one channel: the
// last probe's verdict, and the last proof by traffic.
type pairHealth struct {
	Peer, Channel string
	Up            bool
	LastProbe     time.Time
	Setup         time.Duration // the last successful probe's link setup
	LastError     string
	LastSeen      time.Time // the last link set up on this pair, either way
	PeerCert      *x509.Certificate
	// Direct: the peer has no sidecar (its link port refused the last probe
	// or link) and the channel's onboarding window is open, so this
	// member's connections to it go straight to it, in plaintext.
	Direct bool
}

// Pair paths, as /status and groupwire status show them.
const (
	PathThrough = "through" // through both sidecars, over the channel's link
	PathDirect  = "direct"  // straight to the peer member (onboarding window)
	PathDown    = "down"    // neither
)

// path says how this member's connections reach the peer.
func (h *pairHealth) path() string {
	switch {
	case h.Up:
		return PathThrough
	case h.Direct:
		return PathDirect
	}
	return PathDown
}

// healthBoard holds every pair's health; the prober writes it, links
// prove it, the status page and metrics read it.
type healthBoard struct {
	mu    sync.Mutex
	pairs map[pairKey]*pairHealth
}

func newHealthBoard(pairs []pairKey) *healthBoard {
	b := &healthBoard{pairs: make(map[pairKey]*pairHealth)}
	b.setPairs(pairs)
	return b
}

// setPairs makes the board hold exactly pairs: new ones start unknown
// (down), those no longer listed are forgotten, the rest keep their
// health.
func (b *healthBoard) setPairs(pairs []pairKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := make(map[pairKey]bool, len(pairs))
	for _, k := range pairs {
		keep[k] = true
		if b.pairs[k] == nil {
			b.pairs[k] = &pairHealth{Peer: k.peer, Channel: k.channel}
		}
	}
	for k := range b.pairs {
		if !keep[k] {
			delete(b.pairs, k)
		}
	}
}

// probed records a probe's outcome; direct says the probe found no
// sidecar at the peer while the channel's onboarding window is open.
func (b *healthBoard) probed(peer, channel string, at time.Time, setup time.Duration, cert *x509.Certificate, err error, direct bool) {
	b.update(peer, channel, func(h *pairHealth) {
		h.LastProbe, h.Direct = at, direct
		if err != nil {
			h.Up, h.LastError = false, err.Error()
			return
		}
		h.Up, h.Setup, h.PeerCert = true, setup, cert
	})
}

// direct records a direct link made to the peer: its link port refused.
func (b *healthBoard) direct(peer, channel string) {
	b.update(peer, channel, func(h *pairHealth) { h.Up, h.Direct = false, true })
}

// seen records a link set up on the pair, which proves it up.
func (b *healthBoard) seen(peer, channel string, cert *x509.Certificate) {
	b.update(peer, channel, func(h *pairHealth) {
		h.Up, h.Direct, h.LastSeen = true, false, time.Now()
		if cert != nil {
			h.PeerCert = cert
		}
	})
}

func (b *healthBoard) update(peer, channel string, f func(*pairHealth)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.pairs[pairKey{peer, channel}]; h != nil {
		f(h)
	}
}

// all returns a copy of every pair's health, sorted by peer and channel.
func (b *healthBoard) all() []pairHealth {
	b.mu.Lock()
	out := make([]pairHealth, 0, len(b.pairs))
	for _, h := range b.pairs {
		out = append(out, *h)
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].Channel < out[j].Channel
	})
	return out
}

// probeLoop probes one pair every probe_interval until ctx ends, each
// probe bounded by the interval, so that a pair that goes down shows as
// down within two intervals and one that comes back within one. Each probe
// uses the listener's current route, so a reload's new address or
// identity is probed at once.
func (s *Sidecar) probeLoop(ctx context.Context, rl *routeListener) {
	interval := s.current().plan.ProbeInterval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		r := rl.route.Load()
		pctx, cancel := context.WithTimeout(ctx, interval)
		setup, cert, err := r.dialer.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.health.probed(r.Peer, r.Channel, time.Now(), setup, cert, err, r.goesDirect(err))
		if err == nil {
			s.metrics.probeSeconds.WithLabelValues(r.Peer, r.Channel).Observe(setup.Seconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// clearDirect forgets that a pair's peer is reached directly once its
// channel's window is closed (open says which pairs' windows are open):
// from then on it is through or down.
func (b *healthBoard) clearDirect(open func(pairKey) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, h := range b.pairs {
		if !open(k) {
			h.Direct = false
		}
	}
}
