package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/groupwire/groupwire/certs"
)

// routeListener is one bound outbound listener. Its route (the peer's
// address, identity and the dialer) is swapped in place when a reload
// changes it but not the listen address; its accept loop and its probe
// loop end when it is stopped. In drop-in mode it has no listener (ln is
// nil): the capture listener serves every route, and this keeps the
// route's probe loop.
type routeListener struct {
	route  atomic.Pointer[outboundRoute]
	ln     *net.TCPListener
	cancel context.CancelFunc // stops the probe loop
}

// bindRoute binds the outbound listener of r; nothing is served yet. A
// route with no listen address (drop-in mode) binds nothing.
func bindRoute(r *outboundRoute) (*routeListener, error) {
	if r.Listen == "" {
		rl := &routeListener{}
		rl.route.Store(r)
		return rl, nil
	}
	ln, err := net.Listen("tcp", r.Listen)
	if err != nil {
		return nil, fmt.Errorf("outbound listener for %s (channel %s): %w", r.Peer, r.Channel, err)
	}
	rl := &routeListener{ln: ln.(*net.TCPListener)}
	rl.route.Store(r)
	return rl, nil
}

// serveRoute starts the accept loop (and, with probes on, the probe loop)
// of a bound listener. The caller holds reloadMu.
func (s *Sidecar) serveRoute(ctx context.Context, rl *routeListener, probes bool) {
	if rl.ln != nil {
		s.wg.Go(func() {
			s.acceptLoop(ctx, rl.ln, func(c *net.TCPConn) { s.admitConn(ctx, c, rl.route.Load()) })
		})
	}
	s.serveProbe(ctx, rl, probes)
	r := rl.route.Load()
	s.listeners[pairKey{r.Peer, r.Channel}] = rl
}

// serveProbe starts the listener's probe loop, when probes are on.
func (s *Sidecar) serveProbe(ctx context.Context, rl *routeListener, probes bool) {
	pctx, cancel := context.WithCancel(ctx)
	rl.cancel = cancel
	if probes {
		s.wg.Go(func() { s.probeLoop(pctx, rl) })
	}
}

// stop closes the listener and ends its loops.
func (rl *routeListener) stop() {
	if rl.ln != nil {
		rl.ln.Close()
	}
	if rl.cancel != nil {
		rl.cancel()
	}
}

// startRoutes binds and serves every outbound listener of g (in drop-in
// mode: puts the capture rules in force and serves the capture listener)
// and starts the certificate watch, under reloadMu: from here on reloads
// may run, and see it all. A listener that cannot be bound, or rules that
// cannot be put in force, are an error, and nothing stays bound.
func (s *Sidecar) startRoutes(ctx context.Context, g *generation) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	bound, err := s.bindNewRoutes(g) // none is bound yet: all of them
	if err != nil {
		return err
	}
	d, err := s.startDropIn(ctx, g.plan)
	if err != nil {
		for _, b := range bound {
			b.stop()
		}
		return err
	}
	if d != nil {
		s.dropIn = d
		s.wg.Go(func() {
			s.acceptLoop(ctx, d.ln, func(c *net.TCPConn) { s.serveCaptured(ctx, d, c) })
		})
	}
	s.serveCtx = ctx
	for _, k := range g.routeKeys() {
		s.serveRoute(ctx, bound[k], g.plan.ProbeInterval > 0)
	}
	s.certWatch = s.startCertWatch(ctx, g)
	return nil
}

// bindNewRoutes binds the outbound listeners g has that are not bound at
// the same address already (at start: all of them); on failure nothing
// stays bound. The caller holds reloadMu.
func (s *Sidecar) bindNewRoutes(g *generation) (map[pairKey]*routeListener, error) {
	bound := make(map[pairKey]*routeListener)
	for _, k := range g.routeKeys() {
		r := g.routes[k]
		if rl := s.listeners[k]; rl != nil && rl.route.Load().Listen == r.Listen {
			continue
		}
		rl, err := bindRoute(r)
		if err != nil {
			for _, b := range bound {
				b.stop()
			}
			return nil, err
		}
		bound[k] = rl
	}
	return bound, nil
}

// stopRoutes closes every outbound listener and the certificate watch;
// reloads after it change nothing.
func (s *Sidecar) stopRoutes() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	for k, rl := range s.listeners {
		rl.stop()
		delete(s.listeners, k)
	}
	if s.dropIn != nil {
		s.dropIn.ln.Close() // the rules stay: fail closed (package capture)
		s.dropIn = nil
	}
	s.certWatch.stop()
	s.certWatch = nil
	s.serveCtx = nil
}

// certWatch is a running watch of one generation's certificate files,
// with the refresh of the CRLs its stores fetch (ssl_crl_fetch).
type certWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startCertWatch watches the files of g's stores and keeps their fetched
// CRLs fresh until ctx ends or it is stopped; nil when there is nothing
// to watch. A file watch that cannot be set up is logged (SIGHUP and the
// periodic re-check still reload). It is set up before it returns, so no
// change made after it is missed.
func (s *Sidecar) startCertWatch(ctx context.Context, g *generation) *certWatch {
	stores := g.storeList()
	if len(stores) == 0 {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	cw := &certWatch{cancel: cancel}
	s.startCRLFetches(wctx, stores, &cw.wg)
	w, err := certs.NewWatcher(stores, certs.WatchOptions[*certs.Store]{
		Interval: g.plan.ReloadInterval,
		OnReload: s.onReload,
		OnWatchError: func(err error) {
			s.log.Warn().Err(err).Msg("certificate watch; the periodic re-check still reloads")
		},
	})
	if err != nil {
		s.log.Error().Err(err).Msg("certificate watcher not started; changes are picked up by SIGHUP only")
		return cw
	}
	cw.wg.Go(func() {
		if err := w.Run(wctx); err != nil && wctx.Err() == nil {
			s.log.Error().Err(err).Msg("certificate watcher stopped; changes are picked up by SIGHUP only")
		}
	})
	return cw
}

// startCRLFetches keeps the fetched CRLs of every store that fetches them
// fresh until ctx ends; a changed CRL checks the live links again.
func (s *Sidecar) startCRLFetches(ctx context.Context, stores []*certs.Store, wg *sync.WaitGroup) {
	for _, st := range stores {
		if !st.FetchesCRLs() {
			continue
		}
		wg.Go(func() {
			st.RunCRLFetch(ctx, func() { s.onCRLFetched(st) }, func(err error) {
				s.log.Error().Str("store", st.Name()).Err(err).Msg("CRL refresh failed; the last good CRL stays in force until its nextUpdate")
			})
		})
	}
}

// stop ends the watch and waits for it; a nil watch is a no-op.
func (w *certWatch) stop() {
	if w == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}
