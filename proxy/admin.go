package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/proxy/cluster"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The admin listener serves:
//
//	/metrics  Prometheus metrics of this sidecar
//	/healthz  200 while the process serves
//	/readyz   200 once every listener is bound, 503 while draining
//	/status   JSON: member, channels, pairs, live links, certificate expiry;
//	          a page for a person with Accept: text/html (and at /)
//	/debug/pprof/  the Go runtime's profiles, with Options.Pprof only
func (s *Sidecar) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.serving.Load() {
			http.Error(w, "not serving (starting or draining)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		if wantsHTML(r) {
			s.serveStatusPage(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { s.serveStatusPage(w) })
	if s.opts.Pprof {
		handlePprof(mux)
	}
	return mux
}

// handlePprof serves net/http/pprof's handlers on mux: the index (and
// every named profile under it), the command line, a CPU profile, symbol
// lookup and an execution trace.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// wantsHTML reports a request for the status page rather than its JSON: a
// browser's Accept header, unless ?format=json says otherwise.
func wantsHTML(r *http.Request) bool {
	return r.URL.Query().Get("format") != "json" && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// serveStatusPage writes the status page for a person.
func (s *Sidecar) serveStatusPage(w http.ResponseWriter) {
	var buf bytes.Buffer
	if err := writeStatusPage(&buf, s.Status(), time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// Status is the sidecar's state as the admin endpoint's /status shows it
// (README, "Admin endpoint", has an example). Keys are snake_case.
type Status struct {
	Group    string          `json:"group"`
	Member   string          `json:"member"`
	Serving  bool            `json:"serving"`
	Channels []ChannelStatus `json:"channels"`
	Peers    []PeerStatus    `json:"peers"`
	Links    []LinkInfo      `json:"links"`
}

// ChannelStatus describes one channel's policy and key material.
type ChannelStatus struct {
	Name string `json:"name"`
	Mode string `json:"ssl_mode"`
	// AcceptModes are the modes accepted during a rolling ssl_mode change
	// (accept_modes); absent otherwise.
	AcceptModes []string    `json:"accept_modes,omitempty"`
	Certificate *CertStatus `json:"certificate,omitempty"`
	CRLs        []CRLStatus `json:"crls,omitempty"`
	// SPIFFE describes the Workload API the certificate and trust bundle
	// come from (tls.spiffe); absent for files and ACME.
	SPIFFE *SPIFFEStatus `json:"spiffe,omitempty"`
	Reload ReloadStatus  `json:"reload"`
}

// SPIFFEStatus describes a channel's SPIFFE Workload API source.
type SPIFFEStatus struct {
	Socket      string    `json:"socket"`
	ID          string    `json:"spiffe_id"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	TrustDomain string    `json:"trust_domain"`
	Authorities []string  `json:"authorities"`          // the bundle's CA subjects
	Updates     uint64    `json:"updates"`              // put in force
	Refused     uint64    `json:"refused"`              // unusable updates
	Failures    uint64    `json:"failures"`             // lost connections, garbage
	LastError   string    `json:"last_error,omitempty"` // of the latest update or connection
}

// CertStatus describes a certificate: this member's, or the one a peer
// presented.
type CertStatus struct {
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Source   string    `json:"source,omitempty"` // the ssl_cert file, or "acme"
}

// CRLStatus describes one loaded CRL, or one distribution point whose
// CRL is fetched (ssl_crl_fetch; URL set instead of File).
type CRLStatus struct {
	File       string    `json:"file,omitempty"`
	URL        string    `json:"url,omitempty"`
	Issuer     string    `json:"issuer"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	Revoked    int       `json:"revoked"`
	FetchedAt  time.Time `json:"fetched_at,omitzero"`  // of the fetched CRL in force
	Fetches    uint64    `json:"fetches,omitempty"`    // attempts
	Failures   uint64    `json:"failures,omitempty"`   // failed attempts
	LastError  string    `json:"last_error,omitempty"` // of the latest attempt
}

// ReloadStatus says how the last reload of a channel's material went.
type ReloadStatus struct {
	OK        bool      `json:"ok"`
	LastError string    `json:"last_error,omitempty"`
	LoadedAt  time.Time `json:"loaded_at,omitzero"`
}

// PeerStatus is the health of the pair with one peer on one channel.
type PeerStatus struct {
	Peer    string `json:"peer"`
	Channel string `json:"channel"`
	Up      bool   `json:"up"`
	// Path is how this member's connections reach the peer: "through" the
	// sidecars, "direct" to the peer member in plaintext (drop-in mode's
	// onboarding window, the peer has no sidecar yet), or "down".
	Path      string    `json:"path"`
	LastProbe time.Time `json:"last_probe,omitzero"`
	SetupMS   float64   `json:"setup_ms"`
	LastError string    `json:"last_error,omitempty"`
	LiveLinks int       `json:"live_links"`
	// LinkModes are the ssl_modes the live links of the pair run at, sorted:
	// during a rolling ssl_mode change, a peer still at the old mode shows
	// it here.
	LinkModes       []string    `json:"link_modes,omitempty"`
	BytesToPeer     uint64      `json:"bytes_to_peer"`
	BytesToMember   uint64      `json:"bytes_to_member"`
	PeerCertificate *CertStatus `json:"peer_certificate,omitempty"`
}

// Status returns the sidecar's current state.
func (s *Sidecar) Status() Status {
	g := s.current()
	st := Status{Group: g.plan.Group, Member: g.plan.Member, Serving: s.serving.Load(), Links: s.Links()}
	for _, ch := range g.plan.Channels {
		cs := channelStatus(ch, g.stores[ch.Name])
		if src := s.spiffeOf(g.stores[ch.Name]); src != nil {
			cs.SPIFFE = spiffeStatus(src)
		}
		st.Channels = append(st.Channels, cs)
	}
	sort.Slice(st.Channels, func(i, j int) bool { return st.Channels[i].Name < st.Channels[j].Name })
	st.Peers = s.peerStatus(st.Links)
	return st
}

// channelStatus describes one channel's modes and key material.
func channelStatus(ch cluster.ChannelPlan, store *certs.Store) ChannelStatus {
	cs := ChannelStatus{Name: ch.Name, Mode: ch.Mode.String(), Reload: ReloadStatus{OK: true}}
	for _, m := range ch.AcceptModes {
		cs.AcceptModes = append(cs.AcceptModes, m.String())
	}
	if store == nil {
		return cs
	}
	snap := store.Current()
	cs.Reload.LoadedAt = snap.LoadedAt
	if err := store.LastError(); err != nil {
		cs.Reload = ReloadStatus{OK: false, LastError: err.Error(), LoadedAt: snap.LoadedAt}
	}
	if snap.Cert != nil && snap.Cert.Leaf != nil {
		cs.Certificate = certStatus(snap.Cert.Leaf)
		cs.Certificate.Source = ch.Source.Cert
		if ch.ACME != nil {
			cs.Certificate.Source = "acme"
		}
		if ch.SPIFFE != nil {
			cs.Certificate.Source = "spiffe " + ch.SPIFFE.Socket
		}
	}
	if snap.CRLs != nil {
		for _, info := range snap.CRLs.Info() {
			cs.CRLs = append(cs.CRLs, CRLStatus{File: info.File, Issuer: info.Issuer, NextUpdate: info.NextUpdate, Revoked: info.Revoked})
		}
	}
	for _, f := range store.FetchedCRLs() {
		cs.CRLs = append(cs.CRLs, CRLStatus{URL: f.URL, Issuer: f.Issuer, NextUpdate: f.NextUpdate, Revoked: f.Revoked,
			FetchedAt: f.FetchedAt, Fetches: f.Fetches, Failures: f.Failures, LastError: f.LastError})
	}
	return cs
}

// spiffeStatus describes a Workload API source.
func spiffeStatus(src *certs.SPIFFE) *SPIFFEStatus {
	info, err := src.Info()
	applied, refused, failed := src.Counts()
	st := &SPIFFEStatus{Socket: src.Config().Socket, ID: info.ID, NotAfter: info.NotAfter, TrustDomain: info.TrustDomain,
		Authorities: info.Authorities, Updates: applied, Refused: refused, Failures: failed}
	if err != nil {
		st.LastError = err.Error()
	}
	return st
}

// peerStatus joins each pair's health with its live links and bytes.
func (s *Sidecar) peerStatus(links []LinkInfo) []PeerStatus {
	live := map[pairKey]int{}
	modes := map[pairKey][]string{}
	for _, l := range links {
		k := pairKey{l.Peer, l.Channel}
		live[k]++
		if !slices.Contains(modes[k], l.Mode) {
			modes[k] = append(modes[k], l.Mode)
		}
	}
	bytes := s.pairBytes()
	var out []PeerStatus
	for _, h := range s.health.all() {
		ps := PeerStatus{Peer: h.Peer, Channel: h.Channel, Up: h.Up, Path: h.path(), LastProbe: h.LastProbe, LastError: h.LastError,
			SetupMS: float64(h.Setup.Microseconds()) / 1000, LiveLinks: live[pairKey{h.Peer, h.Channel}], LinkModes: slices.Sorted(slices.Values(modes[pairKey{h.Peer, h.Channel}])),
			BytesToPeer: bytes[bytesKey{h.Peer, h.Channel, "to_peer"}], BytesToMember: bytes[bytesKey{h.Peer, h.Channel, "to_member"}]}
		if h.Up {
			ps.LastError = ""
		}
		if h.PeerCert != nil {
			ps.PeerCertificate = certStatus(h.PeerCert)
		}
		out = append(out, ps)
	}
	return out
}

func certStatus(c *x509.Certificate) *CertStatus {
	return &CertStatus{Subject: c.Subject.String(), Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter}
}

// serveAdmin runs the admin listener until ctx ends.
func (s *Sidecar) serveAdmin(ctx context.Context, ln net.Listener) {
	srv := &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error().Err(err).Msg("admin listener stopped")
	}
	<-done
}
