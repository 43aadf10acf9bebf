// Package proxy is the runtime of one member's sidecar: given a
// cluster.Plan it opens the loopback listeners that tunnel to each peer
// and the inbound listener that peers dial, keeps the registry of live
// links, reloads key material and cuts links whose peers are no longer
// trusted, serves the admin endpoint and metrics, and drains on shutdown.
// It does not read the cluster file (package cluster), speak the link
// protocol (package transport) or move the bytes (package relay).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/proxy/cluster"
	"github.com/groupwire/groupwire/proxy/procs"
	"github.com/groupwire/groupwire/proxy/relay"
	"github.com/groupwire/groupwire/transport"
)

// Options tune a Sidecar beyond what the plan says.
type Options struct {
	// Logger receives one line per link and every reload; the zero value
	// discards everything.
	Logger zerolog.Logger
	// DrainTimeout, when set, overrides the plan's drain_timeout: how long
	// Run waits for live links to end after its context is cancelled
	// before it cuts them. Zero takes the plan's (default 10s).
	DrainTimeout time.Duration
	// AdaptiveProcs lets the sidecar set the process's GOMAXPROCS from its
	// load while it runs (package procs): one P while it only relays, all
	// of them while links are set up in a burst or relaying keeps a core
	// busy. `groupwire run` sets it unless GOMAXPROCS is in the
	// environment; leave it off where several sidecars share a process.
	AdaptiveProcs bool
	// Pprof serves the Go runtime's profiles (net/http/pprof) on the admin
	// listener under /debug/pprof/. It is off unless asked for: a profile
	// shows the process's internals (its command line, its goroutines'
	// stacks), and a CPU profile costs CPU while it runs. `groupwire run
	// --pprof` sets it; keep such an admin listener on loopback.
	Pprof bool
}

// Sidecar is one member's groupwire. Create it with New, start it with Run.
type Sidecar struct {
	opts    Options
	log     zerolog.Logger
	gen     atomic.Pointer[generation] // the current plan and what is built from it
	acme    []*certs.ACME              // one per distinct tls.acme configuration; Run keeps them renewing
	spiffe  []spiffeStore              // one per tls.spiffe channel; Run keeps them following the Workload API
	pool    *relay.Pool
	links   *registry
	direct  *directLinks // plaintext links to peers with no sidecar yet (onboarding window)
	admit   *admission
	health  *healthBoard
	logRate *logLimiter // refusal lines, so a flood cannot fill the disk
	metrics *metrics
	ready   chan struct{}
	serving atomic.Bool    // listeners bound and not draining
	wg      sync.WaitGroup // every goroutine Run starts

	// reloadMu serializes reloads with Run's start and stop; it guards
	// what follows.
	reloadMu  sync.Mutex
	serveCtx  context.Context            // Run's serving context; nil before Run and after it stopped
	listeners map[pairKey]*routeListener // bound outbound listeners
	certWatch *certWatch                 // the running certificate watch, nil if none
	dropIn    *dropIn                    // drop-in mode's rules and capture listener; nil in loopback mode
}

// New loads every channel's key material and prepares the sidecar for
// plan. Nothing listens until Run.
func New(plan *cluster.Plan, opts Options) (*Sidecar, error) {
	s := &Sidecar{
		opts:      opts,
		log:       opts.Logger.With().Str("member", plan.Member).Logger(),
		pool:      relay.NewPool(),
		links:     newRegistry(),
		direct:    newDirectLinks(),
		admit:     newAdmission(plan.Limits),
		logRate:   newLogLimiter(),
		ready:     make(chan struct{}),
		listeners: make(map[pairKey]*routeListener),
	}
	acmeByConfig := make(map[certs.ACMEConfig]*certs.ACME)
	g, err := buildGeneration(plan, storeReuse{
		newACME: func(ch cluster.ChannelPlan, st *certs.Store) error {
			return s.attachACME(ch, st, acmeByConfig)
		},
		newSPIFFE: s.attachSPIFFE,
	})
	if err != nil {
		return nil, err
	}
	s.gen.Store(g)
	for _, w := range plan.Warnings {
		s.log.Warn().Str("key", w.Path).Msg(w.Msg)
	}
	s.health = newHealthBoard(g.routeKeys())
	s.metrics = newMetrics(s)
	return s, nil
}

// current returns the current generation.
func (s *Sidecar) current() *generation { return s.gen.Load() }

// attachACME makes the channel's certificate come from ACME: obtained (or
// loaded from storage) before anything is served, bounded by the obtain
// timeout. Channels with one acme configuration share it.
func (s *Sidecar) attachACME(ch cluster.ChannelPlan, store *certs.Store, acmeByConfig map[certs.ACMEConfig]*certs.ACME) error {
	key := *ch.ACME
	a := acmeByConfig[key]
	if a == nil {
		var err error
		if a, err = certs.NewACME(*ch.ACME, s.log); err != nil {
			return err
		}
		if err := a.Obtain(context.Background()); err != nil {
			return err
		}
		acmeByConfig[key] = a
		s.acme = append(s.acme, a)
	}
	return a.Attach(store)
}

// Ready is closed once every listener is bound.
func (s *Sidecar) Ready() <-chan struct{} { return s.ready }

// Links returns the live links, oldest first.
func (s *Sidecar) Links() []LinkInfo {
	var out []LinkInfo
	for _, l := range s.links.all() {
		info := LinkInfo{ID: l.id, Peer: l.peer, Channel: l.channel, Direction: l.direction, Mode: l.mode.String(), Started: l.started}
		if pc := l.link.PeerCertificates(); len(pc) > 0 {
			info.PeerSerial = pc[0].SerialNumber.Text(16)
		}
		out = append(out, info)
	}
	return out
}

// Run binds every listener, serves links until ctx is cancelled, then
// stops accepting, lets live links finish for up to the drain timeout,
// cuts the rest and returns once every goroutine it started has ended. A
// listener that cannot be bound is an error before anything is served.
func (s *Sidecar) Run(ctx context.Context) error {
	g := s.current()
	inbound, admin, err := s.listenFixed(g.plan)
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	if err := s.startRoutes(serveCtx, g); err != nil {
		inbound.Close()
		if admin != nil {
			admin.Close()
		}
		return err
	}
	if admin != nil {
		s.wg.Go(func() { s.serveAdmin(serveCtx, admin) })
	}
	s.wg.Go(func() {
		s.acceptLoop(serveCtx, inbound, func(c *net.TCPConn) { s.admitConn(serveCtx, c, nil) })
	})
	s.wg.Go(func() { s.housekeeping(serveCtx) })
	s.startACME(serveCtx)
	s.startSPIFFE(serveCtx)
	s.startProcs(serveCtx)
	s.serving.Store(true)
	close(s.ready)
	s.log.Info().Str("listen", g.plan.Listen).Int("routes", len(g.routes)).Str("admin", g.plan.Admin).Msg("sidecar running")

	<-ctx.Done()
	s.serving.Store(false)
	inbound.Close()
	s.stopRoutes()
	s.drain()
	stopServing()
	s.wg.Wait()
	s.log.Info().Msg("sidecar stopped")
	return nil
}

// startProcs, with Options.AdaptiveProcs, sets GOMAXPROCS from the load
// until ctx ends, between 1 and the count the process started with.
func (s *Sidecar) startProcs(ctx context.Context) {
	high := runtime.GOMAXPROCS(0)
	if !s.opts.AdaptiveProcs || high <= 1 {
		return
	}
	gov := procs.Governor{Low: 1, High: high, Quiet: procsQuiet, Setups: s.admit.inFlight,
		Changed: func(from, to int, l procs.Load) {
			s.log.Debug().Int("from", from).Int("to", to).Float64("cpu", l.CPU).Int("setups", l.Setups).Msg("GOMAXPROCS changed")
		}}
	s.wg.Go(func() { gov.Run(ctx, procsPeriod) })
}

// How often the processor count is looked at, and how long the load must
// stay light before it goes back to one.
const (
	procsPeriod = 250 * time.Millisecond
	procsQuiet  = 5 * time.Second
)

// listenFixed binds what a reload cannot move: the inbound listener and
// the admin listener (nil when off).
func (s *Sidecar) listenFixed(plan *cluster.Plan) (*net.TCPListener, net.Listener, error) {
	ln, err := net.Listen("tcp", plan.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("inbound listener: %w", err)
	}
	if plan.Admin == "" {
		return ln.(*net.TCPListener), nil, nil
	}
	admin, err := net.Listen("tcp", plan.Admin)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	return ln.(*net.TCPListener), admin, nil
}

// startACME keeps every ACME certificate renewing until ctx ends.
func (s *Sidecar) startACME(ctx context.Context) {
	for _, a := range s.acme {
		s.wg.Go(func() {
			if err := a.Run(ctx); err != nil {
				s.log.Error().Err(err).Msg("acme: renewal stopped; the current certificate stays in use until it expires")
			}
		})
	}
}

// drain waits for live links to end, then cuts those still open.
func (s *Sidecar) drain() {
	timeout := s.opts.DrainTimeout
	if timeout <= 0 {
		timeout = s.current().plan.DrainTimeout
	}
	deadline := time.Now().Add(timeout)
	for s.links.count() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range s.links.close() {
		l.kill("sidecar shutting down")
	}
	for _, l := range s.direct.close() {
		l.kill("sidecar shutting down")
	}
}

// acceptLoop accepts connections until the listener is closed, backing off
// on temporary errors such as EMFILE (5 ms doubling to 1 s, as net/http),
// and hands each to serve.
func (s *Sidecar) acceptLoop(ctx context.Context, ln *net.TCPListener, serve func(*net.TCPConn)) {
	var delay time.Duration
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Str("listen", ln.Addr().String()).Dur("retry_in", delay).Msg("accept failed")
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		delay = 0
		serve(c)
	}
}

// admitConn starts serving a freshly accepted connection, or closes it at
// once, before any TLS work, when a limit is reached.
func (s *Sidecar) admitConn(ctx context.Context, c *net.TCPConn, route *outboundRoute) {
	if route == nil {
		release, limit := s.admit.handshake(c.RemoteAddr())
		if limit != "" {
			s.refuseAtLimit(c, Inbound, limit, "")
			return
		}
		s.wg.Add(1)
		go s.serveInbound(ctx, c, release)
		return
	}
	if !s.localUserAllowed(c, route) {
		return
	}
	release, ok := s.admit.loopback()
	if !ok {
		s.refuseAtLimit(c, Outbound, "max_loopback_pending", route.Peer)
		return
	}
	s.wg.Add(1)
	go s.serveOutbound(ctx, c, route, release)
}

// localUserAllowed checks allowed_uids on a loopback connection: the
// process that opened it must run as one of the users the plan names. A
// refused connection is reset, counted and logged with the uid.
func (s *Sidecar) localUserAllowed(c *net.TCPConn, route *outboundRoute) bool {
	allowed := s.current().plan.AllowedUIDs
	if allowed == nil {
		return true
	}
	uid, err := peerUID(c)
	if err == nil && slices.Contains(allowed, int(uid)) {
		return true
	}
	remote, log := s.resetRefused(c, s.metrics.outboundRefused, "uid")
	if !log {
		return false
	}
	ev := s.log.Warn().Str("remote", remote).Str("peer", route.Peer).Str("channel", route.Channel).Ints("allowed_uids", allowed)
	if err != nil {
		ev.Err(err).Msg("loopback connection refused: its user could not be told")
	} else {
		ev.Uint32("uid", uid).Msg("loopback connection refused: uid not in allowed_uids")
	}
	return false
}

// refuseAtLimit resets a connection turned away by limit, counts it and
// logs it, rate-limited.
func (s *Sidecar) refuseAtLimit(c *net.TCPConn, dir Direction, limit, peer string) {
	counter := s.metrics.refused
	if dir == Outbound {
		counter = s.metrics.outboundRefused
	}
	if remote, log := s.resetRefused(c, counter, string(transport.ReasonLimit)); log {
		s.log.Warn().Str("remote", remote).Str("dir", string(dir)).Str("reason", string(transport.ReasonLimit)).Str("peer", peer).Str("limit", limit).
			Int("value", s.current().plan.Limits.Value(limit)).Msg("connection refused: limit reached")
	}
}

// resetRefused resets a connection refused before any link work, counts it
// under reason in counter, and reports its remote address and whether a
// line about it may be logged now (rate-limited per reason and source).
func (s *Sidecar) resetRefused(c *net.TCPConn, counter *prometheus.CounterVec, reason string) (remote string, log bool) {
	remote = c.RemoteAddr().String()
	_ = c.SetLinger(0)
	c.Close()
	counter.WithLabelValues(reason).Inc()
	return remote, s.logRate.allow(reason, remote, time.Now())
}
