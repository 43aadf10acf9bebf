package proxy

import (
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one sidecar's Prometheus metrics, in a registry of its own
// (no global state). Counters are updated when a link ends or a reload
// runs, never per chunk of relayed bytes.
type metrics struct {
	registry *prometheus.Registry
	links    *prometheus.CounterVec // links that ended, by outcome
	refused  *prometheus.CounterVec // inbound links refused before relaying
	// outboundRefused counts local connections turned away before dialing.
	outboundRefused *prometheus.CounterVec
	cut             *prometheus.CounterVec // live links cut by a trust change
	direct          *prometheus.CounterVec // direct plaintext links made in an onboarding window
	aborts          *prometheus.CounterVec // links that ended in an abort, passed on as a reset
	reloads         *prometheus.CounterVec // key material reload attempts
	configReloads   *prometheus.CounterVec // cluster file reloads, by result
	configReloadOK  prometheus.Gauge       // 1 unless the last cluster file reload was refused
	linkSetup       prometheus.Histogram   // dial + handshake + HELLO, outbound
	// probeSeconds is the setup time of successful probes, per pair.
	probeSeconds *prometheus.HistogramVec

	bytesMu     sync.Mutex
	closedBytes map[bytesKey]uint64 // guarded by bytesMu; bytes of links that ended
}

func newMetrics(s *Sidecar) *metrics {
	m := &metrics{
		closedBytes: make(map[bytesKey]uint64),
		registry:    prometheus.NewRegistry(),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_links_total",
			Help: "Links that ended, by channel, peer, direction and outcome (ok, not_accepted, failed).",
		}, []string{"channel", "peer", "direction", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_inbound_refused_total",
			Help: "Inbound connections that did not become links, by reason (transport.Reasons: revoked, expired, handshake timeout, limit, the REFUSE codes, ...).",
		}, []string{"reason"}),
		outboundRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_outbound_refused_total",
			Help: "Connections from local processes closed before any link was dialed, by reason (limit, uid, unmapped: a captured connection to no member's channel address).",
		}, []string{"reason"}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_links_cut_total",
			Help: "Live links cut by the sidecar, by channel and reason: untrusted (revoked, CA gone), expired, mode (its ssl_mode left accept_modes, or a direct link when the onboarding window closed), params (its TLS version or suite no longer allowed), removed (its member or channel left the cluster file), idle (idle_timeout), half_closed (half_close_timeout).",
		}, []string{"channel", "reason"}),
		direct: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_direct_links_total",
			Help: "Direct links: captured connections sent straight to a peer member in plaintext because its link port refused them (no sidecar there yet), while the channel's onboarding window is open (drop-in mode, DISABLED in accept_modes); by channel and peer.",
		}, []string{"channel", "peer"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_link_aborts_total",
			Help: "Links that ended in an abort, passed on to the other side as a reset, by channel and cause " +
				"(peer_no_close_notify, peer_reset, peer_error, member_reset, member_error).",
		}, []string{"channel", "cause"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_cert_reloads_total",
			Help: "Key material reload attempts by store and result (changed, unchanged, failed).",
		}, []string{"store", "result"}),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_config_reloads_total",
			Help: "Cluster file reloads (SIGHUP or a change of the file), by result: ok, unchanged, invalid (the errors groupwire check prints), restart_needed, failed (a listener could not be bound).",
		}, []string{"result"}),
		configReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "groupwire_config_reload_ok",
			Help: "1 if the last cluster file reload was applied (or found nothing to change), 0 if it was refused and the previous configuration stays in force.",
		}),
		probeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "groupwire_peer_probe_seconds",
			Help:    "Link setup time of successful probes (TCP, TLS with both certificates verified, PROBE answered), by peer and channel.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"peer", "channel"}),
		linkSetup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "groupwire_link_setup_seconds",
			Help:    "Time to dial a peer's sidecar, complete the TLS handshake and send HELLO.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	m.configReloadOK.Set(1)
	m.registry.MustRegister(m.links, m.refused, m.outboundRefused, m.cut, m.direct, m.aborts, m.reloads, m.configReloads, m.configReloadOK, m.linkSetup, m.probeSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "groupwire_gomaxprocs",
			Help: "The Go runtime's processor count (GOMAXPROCS) now: 1 while the sidecar only relays, more while links are set up in a burst or relaying keeps a core busy (see the README's Performance section); fixed when GOMAXPROCS is set in the environment.",
		}, func() float64 { return float64(runtime.GOMAXPROCS(0)) }),
		&stateCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// bytesKey names one peer, channel and direction of relayed bytes.
type bytesKey struct{ peer, channel, direction string }

// addClosed adds the bytes a link moved, once it has ended.
func (m *metrics) addClosed(peer, channel string, toPeer, toMember int64) {
	m.bytesMu.Lock()
	defer m.bytesMu.Unlock()
	m.closedBytes[bytesKey{peer, channel, "to_peer"}] += uint64(toPeer)
	m.closedBytes[bytesKey{peer, channel, "to_member"}] += uint64(toMember)
}

// linkBytes is groupwire_link_bytes_total: the bytes of links that ended,
// plus what live links have moved so far, read from each member socket's
// TCP_INFO at scrape time (bytes received from the member, and bytes the
// member has acknowledged). So the hot path does no counting at all, and
// the spliced DISABLED path, where no chunk passes through groupwire, is
// counted too. Off Linux, live links count when they end.
func (c *stateCollector) linkBytes(ch chan<- prometheus.Metric) {
	for k, v := range c.s.pairBytes() {
		ch <- prometheus.MustNewConstMetric(descLinkBytes, prometheus.CounterValue, float64(v), k.peer, k.channel, k.direction)
	}
}

// pairBytes is every pair's relayed bytes per direction: those of links
// that ended plus what live links' member sockets have carried so far.
func (s *Sidecar) pairBytes() map[bytesKey]uint64 {
	m := s.metrics
	m.bytesMu.Lock()
	totals := maps.Clone(m.closedBytes)
	m.bytesMu.Unlock()
	for _, l := range s.links.all() {
		toPeer, toMember, err := socketBytes(l.member)
		if err != nil {
			continue
		}
		if l.direction == Inbound && toMember > 0 {
			// This sidecar dialed the member: the kernel counts the SYN
			// it sent among the bytes acknowledged.
			toMember--
		}
		totals[bytesKey{l.peer, l.channel, "to_peer"}] += toPeer
		totals[bytesKey{l.peer, l.channel, "to_member"}] += toMember
	}
	return totals
}

// peerUp is groupwire_peer_up: 1 for a pair whose last probe, or last
// link, succeeded; 0 otherwise.
func (c *stateCollector) peerUp(ch chan<- prometheus.Metric) {
	for _, h := range c.s.health.all() {
		up := 0.0
		if h.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up, h.Peer, h.Channel)
	}
}

// configReloaded counts a cluster file reload with result; the OK gauge
// is 1 after a reload that put the file in force or found nothing to
// change, 0 after one that was refused.
func (m *metrics) configReloaded(result string) {
	m.configReloads.WithLabelValues(result).Inc()
	ok := 0.0
	if result == reloadOK || result == reloadUnchanged {
		ok = 1
	}
	m.configReloadOK.Set(ok)
}

// stateCollector reports gauges read from the sidecar at scrape time.
type stateCollector struct{ s *Sidecar }

var (
	descLinksActive = prometheus.NewDesc("groupwire_links_active",
		"Live links by channel, peer, direction and the ssl_mode they run at (during a rolling change, the peers still at the old mode).", []string{"channel", "peer", "direction", "mode"}, nil)
	descCertNotAfter = prometheus.NewDesc("groupwire_cert_not_after_seconds",
		"Expiry (Unix time) of the member's own certificate, by store.", []string{"store", "subject", "serial"}, nil)
	descCRLNextUpdate = prometheus.NewDesc("groupwire_crl_next_update_seconds",
		"nextUpdate (Unix time) of each loaded CRL; past it, handshakes fail as OpenSSL's CRL_CHECK does.", []string{"store", "issuer", "file"}, nil)
	descLinkBytes = prometheus.NewDesc("groupwire_link_bytes_total",
		"Bytes relayed, by peer, channel and direction (to_peer, to_member), live links included.", []string{"peer", "channel", "direction"}, nil)
	descPeerUp = prometheus.NewDesc("groupwire_peer_up",
		"1 when the pair with this peer on this channel is up (its last probe or link succeeded), 0 when down.", []string{"peer", "channel"}, nil)
	descCRLFetches = prometheus.NewDesc("groupwire_crl_fetches_total",
		"Fetches of CRLs from distribution points (ssl_crl_fetch), by store, URL and result (ok, failed).", []string{"store", "url", "result"}, nil)
	descCRLFetchAge = prometheus.NewDesc("groupwire_crl_fetch_age_seconds",
		"Seconds since the fetched CRL in force was fetched, by store and distribution point; absent until one was.", []string{"store", "url"}, nil)
	descCRLFailOpen = prometheus.NewDesc("groupwire_crl_fail_open_total",
		"Peer certificates let through without a current fetched CRL under ssl_crl_fetch_fail_open. Any increase is a revocation check that did not happen.", []string{"store"}, nil)
	descCertSource = prometheus.NewDesc("groupwire_cert_source",
		"1 for where a store's certificate and trust come from: files, acme or spiffe.", []string{"store", "source"}, nil)
	descSPIFFEUpdates = prometheus.NewDesc("groupwire_spiffe_updates_total",
		"Updates from the SPIFFE Workload API by result: applied, refused (unusable; the material in force stays), failed (connection lost, garbage).", []string{"store", "result"}, nil)
	descReloadOK = prometheus.NewDesc("groupwire_cert_reload_ok",
		"1 if the last reload attempt of a store succeeded, 0 if it failed (the last good material stays in force).", []string{"store"}, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLinksActive
	ch <- descCertNotAfter
	ch <- descCRLNextUpdate
	ch <- descCRLFetches
	ch <- descCRLFetchAge
	ch <- descCRLFailOpen
	ch <- descCertSource
	ch <- descSPIFFEUpdates
	ch <- descReloadOK
	ch <- descLinkBytes
	ch <- descPeerUp
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.linkBytes(ch)
	c.peerUp(ch)
	type key struct{ channel, peer, dir, mode string }
	active := map[key]int{}
	for _, l := range c.s.links.all() {
		active[key{l.channel, l.peer, string(l.direction), l.mode.String()}]++
	}
	for k, n := range active {
		ch <- prometheus.MustNewConstMetric(descLinksActive, prometheus.GaugeValue, float64(n), k.channel, k.peer, k.dir, k.mode)
	}
	for _, st := range c.s.current().storeList() {
		snap := st.Current()
		if snap.Cert != nil && snap.Cert.Leaf != nil {
			leaf := snap.Cert.Leaf
			ch <- prometheus.MustNewConstMetric(descCertNotAfter, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()),
				st.Name(), leaf.Subject.String(), leaf.SerialNumber.Text(16))
		}
		if snap.CRLs != nil {
			for _, info := range snap.CRLs.Info() {
				if !info.NextUpdate.IsZero() {
					ch <- prometheus.MustNewConstMetric(descCRLNextUpdate, prometheus.GaugeValue, float64(info.NextUpdate.Unix()),
						st.Name(), info.Issuer, info.File)
				}
			}
		}
		c.fetchedCRLs(ch, st)
		c.certSource(ch, st)
		ok := 1.0
		if st.LastError() != nil {
			ok = 0
		}
		ch <- prometheus.MustNewConstMetric(descReloadOK, prometheus.GaugeValue, ok, st.Name())
	}
}

// fetchedCRLs reports a store's CRL distribution points (ssl_crl_fetch).
func (c *stateCollector) fetchedCRLs(ch chan<- prometheus.Metric, st *certs.Store) {
	if !st.FetchesCRLs() {
		return
	}
	ch <- prometheus.MustNewConstMetric(descCRLFailOpen, prometheus.CounterValue, float64(st.FailOpens()), st.Name())
	for _, f := range st.FetchedCRLs() {
		ch <- prometheus.MustNewConstMetric(descCRLFetches, prometheus.CounterValue, float64(f.Fetches-f.Failures), st.Name(), f.URL, "ok")
		ch <- prometheus.MustNewConstMetric(descCRLFetches, prometheus.CounterValue, float64(f.Failures), st.Name(), f.URL, "failed")
		if f.FetchedAt.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descCRLFetchAge, prometheus.GaugeValue, time.Since(f.FetchedAt).Seconds(), st.Name(), f.URL)
		ch <- prometheus.MustNewConstMetric(descCRLNextUpdate, prometheus.GaugeValue, float64(f.NextUpdate.Unix()), st.Name(), f.Issuer, f.URL)
	}
}

// certSource reports where a store's material comes from.
func (c *stateCollector) certSource(ch chan<- prometheus.Metric, st *certs.Store) {
	source := "files"
	if src := c.s.spiffeOf(st); src != nil {
		source = "spiffe"
		applied, refused, failed := src.Counts()
		for result, n := range map[string]uint64{"applied": applied, "refused": refused, "failed": failed} {
			ch <- prometheus.MustNewConstMetric(descSPIFFEUpdates, prometheus.CounterValue, float64(n), st.Name(), result)
		}
	} else if c.s.usesACME(st) {
		source = "acme"
	}
	ch <- prometheus.MustNewConstMetric(descCertSource, prometheus.GaugeValue, 1, st.Name(), source)
}

// usesACME reports whether a channel whose certificate comes from ACME
// uses st.
func (s *Sidecar) usesACME(st *certs.Store) bool {
	g := s.current()
	for _, ch := range g.plan.Channels {
		if ch.ACME != nil && g.stores[ch.Name] == st {
			return true
		}
	}
	return false
}
