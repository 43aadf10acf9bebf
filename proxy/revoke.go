package proxy

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport"
)

// housekeeping, once a second, cuts links whose peer certificate expired
// (unless close_on_expiry is off) and links idle for idle_timeout, and
// returns memory to the system after many links closed.
func (s *Sidecar) housekeeping(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var mem memoryReleaser
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			plan := s.current().plan
			if plan.CloseOnExpiry {
				s.cutExpired(time.Now())
			}
			if plan.IdleTimeout > 0 {
				s.cutIdle(plan.IdleTimeout)
			}
			if plan.HalfCloseTimeout > 0 {
				s.cutHalfClosed(plan.HalfCloseTimeout)
			}
			mem.observe(s.connectionsHeld())
			s.logSuppressed(time.Now())
		}
	}
}

// logSuppressed logs one line per reason whose refusal lines the rate
// limit held back in the period just ended.
func (s *Sidecar) logSuppressed(now time.Time) {
	for _, c := range s.logRate.flush(now) {
		s.log.Warn().Str("reason", c.reason).Str("remote", c.source).Int("suppressed", c.n).Dur("period", logPeriod).
			Msgf("%d more %q refusals from %s suppressed", c.n, c.reason, c.source)
	}
}

// connectionsHeld is what the memory releaser watches: live links, and
// connections not yet links (handshakes in flight, loopback connections
// waiting for a link), since a flood of those grows the heap as much as
// links do.
func (s *Sidecar) connectionsHeld() int {
	return s.links.count() + s.admit.inFlight()
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

// Reload reloads every channel's key material at once (SIGHUP), then
// checks the live links again.
func (s *Sidecar) Reload() {
	stores := s.current().storeList()
	_ = certs.ReloadAll(stores, s.onReload) // onReload logs each failure
	s.refreshCRLs(stores)
}

// refreshCRLs fetches every fetched CRL again (SIGHUP), bounded by the
// fetch time-out; a changed one checks the links again through the
// store's refresh loop.
func (s *Sidecar) refreshCRLs(stores []*certs.Store) {
	for _, st := range stores {
		if err := st.RefreshCRLs(context.Background()); err != nil {
			s.log.Error().Str("store", st.Name()).Err(err).Msg("CRL refresh failed; the last good CRL stays in force until its nextUpdate")
		}
	}
}

// onCRLFetched logs a changed fetched CRL and checks the live links of
// the channels that use the store.
func (s *Sidecar) onCRLFetched(st *certs.Store) {
	s.log.Info().Str("store", st.Name()).Msg("fetched CRL changed; checking live links")
	s.recheckStore(st)
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
	s.recheckStore(st)
}

// recheckStore checks the live links of every channel that uses st.
func (s *Sidecar) recheckStore(st *certs.Store) {
	for name, cs := range s.current().stores {
		if cs == st {
			s.recheckChannel(name)
		}
	}
}

// recheckChannel checks every live link of a channel against the current
// policy (its mode still accepted, its peer's chain still trusted by the
// current key material, its TLS version and suite still allowed) and cuts
// the links that fail. It returns how many it cut.
func (s *Sidecar) recheckChannel(channel string) int {
	p := s.current().policies[channel]
	if p == nil {
		return 0
	}
	cut := 0
	for _, l := range s.links.all() {
		if l.channel != channel {
			continue
		}
		err := p.Reverify(l.mode, l.link.TLS(), l.direction == Inbound)
		if err == nil {
			continue
		}
		reason, label, msg := "peer no longer trusted: ", "untrusted", "cutting link: peer no longer trusted"
		switch {
		case errors.Is(err, transport.ErrModeNotAccepted):
			reason, label, msg = "", "mode", "cutting link: its ssl_mode is no longer accepted"
		case errors.Is(err, transport.ErrParamsNotAllowed):
			reason, label, msg = "", "params", "cutting link: its TLS version or cipher suite is no longer allowed"
		}
		if !l.kill(reason + err.Error()) {
			continue // already on its way out
		}
		cut++
		s.metrics.cut.WithLabelValues(channel, label).Inc()
		ev := s.log.Warn().Str("peer", l.peer).Str("channel", channel).Str("dir", string(l.direction)).Str("mode", l.mode.String()).Err(err)
		if pc := l.link.PeerCertificates(); len(pc) > 0 {
			ev = ev.Str("serial", pc[0].SerialNumber.Text(16))
		}
		ev.Msg(msg)
	}
	return cut
}

// cutExpired cuts links whose peer presented a certificate that has since
// expired.
func (s *Sidecar) cutExpired(now time.Time) {
	for _, l := range s.links.all() {
		if !l.mode.VerifiesChain() {
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
