package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The admin listener serves:
//
//	/metrics  Prometheus metrics of this sidecar
//	/healthz  200 while the process serves
//	/readyz   200 once every listener is bound, 503 while draining
//	/status   JSON: member, channels, live links, certificate expiry
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
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
	return mux
}

// Status is the sidecar's state as the admin endpoint's /status shows it.
type Status struct {
	Group    string          `json:"group"`
	Member   string          `json:"member"`
	Serving  bool            `json:"serving"`
	Channels []ChannelStatus `json:"channels"`
	Links    []LinkInfo      `json:"links"`
}

// ChannelStatus describes one channel's policy and key material.
type ChannelStatus struct {
	Name         string    `json:"name"`
	Mode         string    `json:"ssl_mode"`
	CertSubject  string    `json:"cert_subject,omitempty"`
	CertSerial   string    `json:"cert_serial,omitempty"`
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	LoadedAt     time.Time `json:"loaded_at,omitzero"`
	ReloadError  string    `json:"reload_error,omitempty"`
}

// Status returns the sidecar's current state.
func (s *Sidecar) Status() Status {
	st := Status{Group: s.plan.Group, Member: s.plan.Member, Serving: s.serving.Load(), Links: s.Links()}
	for _, ch := range s.plan.Channels {
		cs := ChannelStatus{Name: ch.Name, Mode: ch.Mode.String()}
		if store := s.stores[ch.Name]; store != nil {
			snap := store.Current()
			cs.LoadedAt = snap.LoadedAt
			if snap.Cert != nil && snap.Cert.Leaf != nil {
				cs.CertSubject = snap.Cert.Leaf.Subject.String()
				cs.CertSerial = snap.Cert.Leaf.SerialNumber.Text(16)
				cs.CertNotAfter = snap.Cert.Leaf.NotAfter
			}
			if err := store.LastError(); err != nil {
				cs.ReloadError = err.Error()
			}
		}
		st.Channels = append(st.Channels, cs)
	}
	sort.Slice(st.Channels, func(i, j int) bool { return st.Channels[i].Name < st.Channels[j].Name })
	return st
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
