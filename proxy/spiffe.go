package proxy

import (
	"context"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// spiffeStore is a channel store whose material comes from the SPIFFE
// Workload API.
type spiffeStore struct {
	src   *certs.SPIFFE
	store *certs.Store
}

// spiffeStartTimeout bounds how long New waits for a first usable SVID:
// long enough for a SPIRE agent starting beside the sidecar, short enough
// that a wrong socket ends in an error (and a restart) rather than a
// sidecar that never serves.
const spiffeStartTimeout = 5 * time.Minute

// attachSPIFFE makes the channel's certificate and trust anchors come from
// the Workload API: the first material is fetched before anything is
// served, retried (and logged) while the agent cannot be reached.
func (s *Sidecar) attachSPIFFE(ch cluster.ChannelPlan, store *certs.Store) error {
	src := certs.NewSPIFFE(*ch.SPIFFE, store)
	ctx, cancel := context.WithTimeout(context.Background(), spiffeStartTimeout)
	defer cancel()
	err := src.Fetch(ctx, func(err error) {
		s.log.Warn().Str("channel", ch.Name).Str("socket", ch.SPIFFE.Socket).Err(err).
			Msg("waiting for the SPIFFE Workload API; retrying")
	})
	if err != nil {
		return err
	}
	info, _ := src.Info()
	s.log.Info().Str("channel", ch.Name).Str("spiffe_id", info.ID).Time("not_after", info.NotAfter).
		Str("trust_domain", info.TrustDomain).Int("authorities", len(info.Authorities)).Msg("SVID from the SPIFFE Workload API")
	s.spiffe = append(s.spiffe, spiffeStore{src: src, store: store})
	return nil
}

// startSPIFFE follows every Workload API stream until ctx ends: each new
// SVID and bundle is put in force, and a bundle change checks the live
// links again, cutting those whose peer no longer chains to it.
func (s *Sidecar) startSPIFFE(ctx context.Context) {
	for _, sp := range s.spiffe {
		s.wg.Go(func() {
			err := sp.src.Watch(ctx, func() {
				s.log.Info().Str("store", sp.store.Name()).Msg("SPIFFE trust bundle changed; checking live links")
				s.recheckStore(sp.store)
			}, func(err error) {
				s.log.Error().Str("store", sp.store.Name()).Err(err).Msg("SPIFFE Workload API; the SVID and bundle in force stay until they expire")
			})
			if err != nil {
				s.log.Error().Str("store", sp.store.Name()).Err(err).Msg("SPIFFE watch stopped; the SVID in force stays until it expires")
			}
		})
	}
}

// spiffeOf returns the Workload API source of a store, or nil.
func (s *Sidecar) spiffeOf(store *certs.Store) *certs.SPIFFE {
	for _, sp := range s.spiffe {
		if sp.store == store {
			return sp.src
		}
	}
	return nil
}
