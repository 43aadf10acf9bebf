package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// SPIFFEConfig is a channel's tls.spiffe block: the member's certificate
// (an X.509-SVID) and the CAs its peers must chain to (its trust domain's
// bundle) come from the SPIFFE Workload API instead of files.
type SPIFFEConfig struct {
	// Socket is the Workload API's address: unix:///run/spire/agent.sock,
	// or tcp://IP:PORT.
	Socket string
	// ID is the SPIFFE ID the SVID must carry (the member's identity when
	// that is a SPIFFE ID); empty takes the Workload API's default SVID.
	ID string
}

// SPIFFE keeps a Store's certificate and trust anchors up to date from the
// Workload API: Fetch gets the first material, Watch follows the stream of
// updates. An update that cannot be used (no SVID with the ID, no bundle
// for its trust domain, an SVID that does not chain to that bundle) is
// refused, and the material in force stays until it expires.
type SPIFFE struct {
	cfg   SPIFFEConfig
	store *Store

	mu      sync.Mutex
	lastErr error      // guarded by mu; of the latest update or connection
	info    SPIFFEInfo // guarded by mu; of the material in force

	applied, refused, failed atomic.Uint64
}

// SPIFFEInfo describes the material in force, for status and check.
type SPIFFEInfo struct {
	ID          string    // the SVID's SPIFFE ID
	NotAfter    time.Time // the SVID's expiry
	TrustDomain string
	Authorities []string // subjects of the bundle's CA certificates
}

// NewSPIFFE returns a source for store, whose Source must name no
// ssl_cert, ssl_key, ssl_ca or ssl_capath.
func NewSPIFFE(cfg SPIFFEConfig, store *Store) *SPIFFE {
	return &SPIFFE{cfg: cfg, store: store}
}

// Config returns the configuration given to NewSPIFFE.
func (s *SPIFFE) Config() SPIFFEConfig { return s.cfg }

// Fetch gets the Workload API's current material once and puts it in
// force, retrying (1 s doubling to 10 s, each failure passed to onRetry)
// until it succeeds or ctx ends.
func (s *SPIFFE) Fetch(ctx context.Context, onRetry func(error)) error {
	delay := time.Second
	for {
		err := s.fetchOnce(ctx)
		if err == nil {
			return nil
		}
		if onRetry != nil {
			onRetry(err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("spiffe %s: no usable X.509-SVID before %w: %w", s.cfg.Socket, context.Cause(ctx), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (s *SPIFFE) fetchOnce(ctx context.Context) error {
	xc, err := workloadapi.FetchX509Context(ctx, workloadapi.WithAddr(s.cfg.Socket))
	if err != nil {
		err = fmt.Errorf("spiffe %s: %w", s.cfg.Socket, err)
		s.note(err, &s.failed)
		return err
	}
	_, err = s.apply(xc)
	return err
}

// Watch follows the Workload API's stream until ctx ends, putting each
// usable update in force and calling onTrustChange after one that changed
// the trust anchors (so that live links can be checked again) and onError
// with each refused update or lost connection (the go-spiffe client
// reconnects with its back-off).
func (s *SPIFFE) Watch(ctx context.Context, onTrustChange func(), onError func(error)) error {
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(s.cfg.Socket))
	if err != nil {
		return fmt.Errorf("spiffe %s: %w", s.cfg.Socket, err)
	}
	defer client.Close()
	err = client.WatchX509Context(ctx, &spiffeWatcher{ctx: ctx, s: s, onTrustChange: onTrustChange, onError: onError})
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("spiffe %s: %w", s.cfg.Socket, err)
}

// spiffeWatcher adapts SPIFFE to workloadapi.X509ContextWatcher.
type spiffeWatcher struct {
	ctx           context.Context // Watch's: once it ends, errors are its end
	s             *SPIFFE
	onTrustChange func()
	onError       func(error)
}

func (w *spiffeWatcher) OnX509ContextUpdate(xc *workloadapi.X509Context) {
	changed, err := w.s.apply(xc)
	switch {
	case err != nil && w.onError != nil:
		w.onError(err)
	case changed && w.onTrustChange != nil:
		w.onTrustChange()
	}
}

func (w *spiffeWatcher) OnX509ContextWatchError(err error) {
	if w.ctx.Err() != nil {
		return
	}
	err = fmt.Errorf("spiffe %s: %w", w.s.cfg.Socket, err)
	w.s.note(err, &w.s.failed)
	if w.onError != nil {
		w.onError(err)
	}
}

// apply checks an update and puts it in force.
func (s *SPIFFE) apply(xc *workloadapi.X509Context) (trustChanged bool, err error) {
	svid, authorities, err := s.pick(xc)
	if err == nil {
		cert := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
		for _, c := range svid.Certificates {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		trustChanged, err = s.store.SetSupplied(cert, authorities)
	}
	if err != nil {
		err = fmt.Errorf("spiffe %s: update refused, the material in force stays: %w", s.cfg.Socket, err)
		s.note(err, &s.refused)
		return false, err
	}
	s.note(nil, &s.applied)
	s.mu.Lock()
	s.info = spiffeInfo(svid, authorities)
	s.mu.Unlock()
	return trustChanged, nil
}

// pick chooses the SVID (the one with the configured ID, else the
// default) and its trust domain's CAs, and checks that the SVID chains to
// them now.
func (s *SPIFFE) pick(xc *workloadapi.X509Context) (*x509svid.SVID, []*x509.Certificate, error) {
	if len(xc.SVIDs) == 0 {
		return nil, nil, errors.New("no X.509-SVID in the update")
	}
	svid := xc.DefaultSVID()
	if s.cfg.ID != "" {
		svid = nil
		var offered []string
		for _, c := range xc.SVIDs {
			offered = append(offered, c.ID.String())
			if c.ID.String() == s.cfg.ID {
				svid = c
			}
		}
		if svid == nil {
			return nil, nil, fmt.Errorf("the Workload API offers an SVID for %s, not for this member's identity %s", strings.Join(offered, ", "), s.cfg.ID)
		}
	}
	td := svid.ID.TrustDomain()
	bundle, err := xc.Bundles.GetX509BundleForTrustDomain(td)
	if err != nil || len(bundle.X509Authorities()) == 0 {
		return nil, nil, fmt.Errorf("no X.509 bundle for the SVID's trust domain %s", td)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, x509bundle.NewSet(bundle)); err != nil {
		return nil, nil, fmt.Errorf("the SVID %s does not chain to its trust domain's bundle: %w", svid.ID, err)
	}
	return svid, bundle.X509Authorities(), nil
}

func spiffeInfo(svid *x509svid.SVID, authorities []*x509.Certificate) SPIFFEInfo {
	info := SPIFFEInfo{ID: svid.ID.String(), NotAfter: svid.Certificates[0].NotAfter, TrustDomain: svid.ID.TrustDomain().Name()}
	for _, a := range authorities {
		info.Authorities = append(info.Authorities, a.Subject.String())
	}
	return info
}

// note records the outcome of an update or connection.
func (s *SPIFFE) note(err error, counter *atomic.Uint64) {
	counter.Add(1)
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// Info describes the material in force (zero before the first), and the
// latest failure, nil after a success.
func (s *SPIFFE) Info() (SPIFFEInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info, s.lastErr
}

// Counts returns how many updates were put in force, refused, and how
// often the Workload API could not be reached or sent garbage.
func (s *SPIFFE) Counts() (applied, refused, failed uint64) {
	return s.applied.Load(), s.refused.Load(), s.failed.Load()
}
