package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one sidecar's Prometheus metrics, in a registry of its own
// (no global state). Counters are updated when a link ends or a reload
// runs, never per chunk of relayed bytes.
type metrics struct {
	registry *prometheus.Registry
	links    *prometheus.CounterVec // links that ended, by outcome
	bytes    *prometheus.CounterVec // bytes relayed by links that ended
	refused  *prometheus.CounterVec // inbound links refused before relaying
	// outboundRefused counts local connections turned away before dialing.
	outboundRefused *prometheus.CounterVec
	cut             *prometheus.CounterVec // live links cut by a trust change
	aborts          *prometheus.CounterVec // links that ended in an abort, passed on as a reset
	reloads         *prometheus.CounterVec // key material reload attempts
	linkSetup       prometheus.Histogram   // dial + handshake + HELLO, outbound
	// probeSeconds is the setup time of successful probes, per pair.
	probeSeconds *prometheus.HistogramVec
}

func newMetrics(s *Sidecar) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_links_total",
			Help: "Links that ended, by channel, peer, direction and outcome (ok, not_accepted, failed).",
		}, []string{"channel", "peer", "direction", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_link_bytes_total",
			Help: "Bytes relayed by links that ended, by channel, peer and way (to_peer, to_member).",
		}, []string{"channel", "peer", "way"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_inbound_refused_total",
			Help: "Inbound links refused during handshake or HELLO, by reason code (handshake for TLS failures, limit for connections over a limit).",
		}, []string{"reason"}),
		outboundRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_outbound_refused_total",
			Help: "Connections from local processes closed before any link was dialed, by reason (limit, uid).",
		}, []string{"reason"}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_links_cut_total",
			Help: "Live links cut because their peer stopped being trusted (revoked, untrusted) or its certificate expired.",
		}, []string{"channel", "reason"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_link_aborts_total",
			Help: "Links that ended in an abort, passed on to the other side as a reset, by channel and cause " +
				"(peer_no_close_notify, peer_reset, peer_error, member_reset, member_error).",
		}, []string{"channel", "cause"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupwire_cert_reloads_total",
			Help: "Key material reload attempts by store and result (changed, unchanged, failed).",
		}, []string{"store", "result"}),
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
	m.registry.MustRegister(m.links, m.bytes, m.refused, m.outboundRefused, m.cut, m.aborts, m.reloads, m.linkSetup, m.probeSeconds,
		&stateCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// stateCollector reports gauges read from the sidecar at scrape time.
type stateCollector struct{ s *Sidecar }

var (
	descLinksActive = prometheus.NewDesc("groupwire_links_active",
		"Live links by channel, peer and direction.", []string{"channel", "peer", "direction"}, nil)
	descCertNotAfter = prometheus.NewDesc("groupwire_cert_not_after_seconds",
		"Expiry (Unix time) of the member's own certificate, by store.", []string{"store", "subject", "serial"}, nil)
	descCRLNextUpdate = prometheus.NewDesc("groupwire_crl_next_update_seconds",
		"nextUpdate (Unix time) of each loaded CRL; past it, handshakes fail as OpenSSL's CRL_CHECK does.", []string{"store", "issuer", "file"}, nil)
	descReloadOK = prometheus.NewDesc("groupwire_cert_reload_ok",
		"1 if the last reload attempt of a store succeeded, 0 if it failed (the last good material stays in force).", []string{"store"}, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLinksActive
	ch <- descCertNotAfter
	ch <- descCRLNextUpdate
	ch <- descReloadOK
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ channel, peer, dir string }
	active := map[key]int{}
	for _, l := range c.s.links.all() {
		active[key{l.channel, l.peer, string(l.direction)}]++
	}
	for k, n := range active {
		ch <- prometheus.MustNewConstMetric(descLinksActive, prometheus.GaugeValue, float64(n), k.channel, k.peer, k.dir)
	}
	for _, st := range c.s.stores {
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
		ok := 1.0
		if st.LastError() != nil {
			ok = 0
		}
		ch <- prometheus.MustNewConstMetric(descReloadOK, prometheus.GaugeValue, ok, st.Name())
	}
}
