package proxy

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/groupwire/groupwire/certs"
)

// housekeeping reloads key material when its files change, and after
// every reload checks each live link's peer again, cutting those whose
// peer is no longer trusted (revoked, CA gone). Once a second it cuts
// links whose peer certificate expired (unless close_on_expiry is off) and
// links idle for idle_timeout, and returns memory to the system after many
// links closed.
func (s *Sidecar) housekeeping(ctx context.Context, watcher *certs.Watcher) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if watcher == nil {
			return
		}
		if err := watcher.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("certificate watcher stopped; changes are picked up by SIGHUP only")
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var mem memoryReleaser
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-tick.C:
			if s.plan.CloseOnExpiry {
				s.cutExpired(s.now())
			}
			if s.plan.IdleTimeout > 0 {
				s.cutIdle(s.plan.IdleTimeout)
			}
			// Handshakes in flight count too: a flood of them grows the
			// heap as much as links do.
			mem.observe(s.links.count() + s.admit.inFlight())
			s.logSuppressed(time.Now())
		}
	}
}

// newCertWatcher sets up the watch of every store's files, so that a change
// made once the sidecar is ready is seen; nil when there is nothing to
// watch or the watch cannot be set up (logged: SIGHUP and the periodic
// re-check still reload).
func (s *Sidecar) newCertWatcher() *certs.Watcher {
	stores := make([]*certs.Store, 0, len(s.stores))
	for _, st := range s.stores {
		stores = append(stores, st)
	}
	if len(stores) == 0 {
		return nil
	}
	w, err := certs.NewWatcher(stores, certs.WatchOptions{
		Interval: s.plan.ReloadInterval,
		OnReload: s.onReload,
		OnWatchError: func(err error) {
			s.log.Warn().Err(err).Msg("certificate watch; the periodic re-check still reloads")
		},
	})
	if err != nil {
		s.log.Error().Err(err).Msg("certificate watcher not started; changes are picked up by SIGHUP only")
		return nil
	}
	return w
}

// logSuppressed logs one line per reason whose refusal lines the rate
// limit held back in the period just ended.
func (s *Sidecar) logSuppressed(now time.Time) {
	for _, c := range s.logRate.flush(now) {
		s.log.Warn().Str("reason", c.reason).Int("suppressed", c.n).Dur("period", logPeriod).
			Msgf("%d more %q refusals suppressed", c.n, c.reason)
	}
}

// memoryReleaser hands memory back to the operating system after many
// links have closed. An idle Go process collects garbage only every two
// minutes and returns only what lies above its last heap goal, so without
// this a sidecar's RSS stays at the high-water mark of its link count.
type memoryReleaser struct {
	peak int // most live links seen since the last release
}

// releaseDrop is how many links must have closed since the peak, and
// which fraction of it, before memory is released.
const (
	releaseDrop     = 64
	releaseFraction = 2
)

func (m *memoryReleaser) observe(live int) {
	m.peak = max(m.peak, live)
	if m.peak-live >= releaseDrop && live <= m.peak/releaseFraction {
		debug.FreeOSMemory()
		m.peak = live
	}
}

func (s *Sidecar) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Reload reloads every channel's key material at once (SIGHUP), then
// checks the live links again.
func (s *Sidecar) Reload() {
	stores := make([]*certs.Store, 0, len(s.stores))
	for _, st := range s.stores {
		stores = append(stores, st)
	}
	_ = certs.ReloadAll(stores, s.onReload) // onReload logs each failure
}

// onReload logs a reload attempt and, when the material changed, checks
// the live links of the channels that use the store.
func (s *Sidecar) onReload(st *certs.Store, changed bool, err error) {
	if err != nil {
		s.metrics.reloads.WithLabelValues(st.Name(), "failed").Inc()
		s.log.Error().Str("store", st.Name()).Err(err).Msg("reload failed; the last good certificates stay in force")
		return
	}
	if !changed {
		s.metrics.reloads.WithLabelValues(st.Name(), "unchanged").Inc()
		return
	}
	s.metrics.reloads.WithLabelValues(st.Name(), "changed").Inc()
	s.log.Info().Str("store", st.Name()).Msg("certificates reloaded")
	for name, cs := range s.stores {
		if cs == st {
			s.recheckChannel(name)
		}
	}
}

// recheckChannel verifies the peer of every live link of a channel against
// the current key material and cuts the links that fail.
func (s *Sidecar) recheckChannel(channel string) {
	p := s.policies[channel]
	for _, l := range s.links.all() {
		if l.channel != channel || len(l.link.PeerCertificates()) == 0 {
			continue
		}
		if err := p.Reverify(l.link.PeerCertificates(), l.direction == Inbound); err != nil {
			if !l.kill("peer no longer trusted: " + err.Error()) {
				continue // already on its way out
			}
			s.metrics.cut.WithLabelValues(channel, "untrusted").Inc()
			s.log.Warn().Str("peer", l.peer).Str("channel", channel).Str("dir", string(l.direction)).
				Str("serial", l.link.PeerCertificates()[0].SerialNumber.Text(16)).Err(err).
				Msg("cutting link: peer no longer trusted")
		}
	}
}

// cutExpired cuts links whose peer presented a certificate that has since
// expired.
func (s *Sidecar) cutExpired(now time.Time) {
	for _, l := range s.links.all() {
		p := s.policies[l.channel]
		if p == nil || !p.Mode.VerifiesChain() {
			continue
		}
		for _, c := range l.link.PeerCertificates() {
			if !now.After(c.NotAfter) {
				continue
			}
			if l.kill("peer certificate " + c.Subject.String() + " expired at " + c.NotAfter.UTC().Format(time.RFC3339)) {
				s.metrics.cut.WithLabelValues(l.channel, "expired").Inc()
				s.log.Warn().Str("peer", l.peer).Str("channel", l.channel).Str("dir", string(l.direction)).
					Str("subject", c.Subject.String()).Time("not_after", c.NotAfter).Msg("cutting link: peer certificate expired")
			}
			break
		}
	}
}
