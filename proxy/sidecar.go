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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/proxy/cluster"
	"github.com/groupwire/groupwire/proxy/relay"
	"github.com/groupwire/groupwire/transport"
)

// Options tune a Sidecar beyond what the plan says.
type Options struct {
	// Logger receives one line per link and every reload; the zero value
	// discards everything.
	Logger zerolog.Logger
	// DrainTimeout bounds how long Run waits for live links to end after
	// its context is cancelled before it cuts them; zero means 10s.
	DrainTimeout time.Duration
	// Now is the clock for certificate checks; nil means time.Now.
	Now func() time.Time
}

// Sidecar is one member's groupwire. Create it with New, start it with Run.
type Sidecar struct {
	plan     *cluster.Plan
	opts     Options
	log      zerolog.Logger
	stores   map[string]*certs.Store // by channel; TLS channels only
	acme     []*certs.ACME           // one per distinct tls.acme configuration; Run keeps them renewing
	policies map[string]*transport.Policy
	acceptor *transport.Acceptor
	routes   []outboundRoute
	delivery map[string]string // channel → member service address
	pool     *relay.Pool
	links    *registry
	admit    *admission
	health   *healthBoard
	logRate  *logLimiter // refusal lines, so a flood cannot fill the disk
	metrics  *metrics
	ready    chan struct{}
	serving  atomic.Bool    // listeners bound and not draining
	wg       sync.WaitGroup // every goroutine Run starts
}

type outboundRoute struct {
	cluster.Route
	dialer *transport.Dialer
}

// New loads every channel's key material and prepares the sidecar for
// plan. Nothing listens until Run.
func New(plan *cluster.Plan, opts Options) (*Sidecar, error) {
	s := &Sidecar{
		plan:     plan,
		opts:     opts,
		log:      opts.Logger.With().Str("member", plan.Member).Logger(),
		stores:   make(map[string]*certs.Store),
		policies: make(map[string]*transport.Policy),
		delivery: make(map[string]string),
		pool:     relay.NewPool(),
		links:    newRegistry(),
		admit:    newAdmission(plan.Limits),
		logRate:  newLogLimiter(),
		ready:    make(chan struct{}),
	}
	var policies []*transport.Policy
	acmeByConfig := make(map[string]*certs.ACME)
	for _, ch := range plan.Channels {
		p, err := s.newPolicy(ch, acmeByConfig)
		if err != nil {
			return nil, err
		}
		s.policies[ch.Name] = p
		policies = append(policies, p)
	}
	for _, w := range plan.Warnings {
		s.log.Warn().Str("key", w.Path).Msg(w.Msg)
	}
	if err := s.buildLinks(policies); err != nil {
		return nil, err
	}
	s.health = newHealthBoard(s.routes)
	s.metrics = newMetrics(s)
	return s, nil
}

// newPolicy loads a channel's key material (from files, or obtained over
// ACME; channels with one acme configuration share it) and returns its
// checked policy.
func (s *Sidecar) newPolicy(ch cluster.ChannelPlan, acmeByConfig map[string]*certs.ACME) (*transport.Policy, error) {
	p := &transport.Policy{Channel: ch.Name, Mode: ch.Mode, Params: ch.Params, Now: s.opts.Now}
	if ch.Mode.UsesTLS() {
		store, err := certs.NewStore("channel "+ch.Name, ch.Source)
		if err != nil {
			return nil, err // names the store: "channel NAME: load ..."
		}
		s.stores[ch.Name] = store
		p.Creds = store
		if msg, err := certs.KeyExposure(ch.Source.Key); ch.Source.Key != "" && err == nil && msg != "" {
			s.log.Warn().Str("channel", ch.Name).Str("ssl_key", ch.Source.Key).Msg(msg)
		}
	}
	if ch.Mode.UsesTLS() && ch.ACME != nil {
		if err := s.attachACME(ch, acmeByConfig); err != nil {
			return nil, fmt.Errorf("channel %s: %w", ch.Name, err)
		}
		// ACME certificates often carry serverAuth only; links are
		// symmetric, so a dialing peer may present one too.
		p.ServerAuthClients = true
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// attachACME makes the channel's certificate come from ACME: obtained (or
// loaded from storage) before anything is served, bounded by the obtain
// timeout.
func (s *Sidecar) attachACME(ch cluster.ChannelPlan, acmeByConfig map[string]*certs.ACME) error {
	key := fmt.Sprintf("%+v", *ch.ACME)
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
	return a.Attach(s.stores[ch.Name])
}

// buildLinks makes the acceptor, a dialer per outbound route and the
// delivery address of each channel.
func (s *Sidecar) buildLinks(policies []*transport.Policy) error {
	plan := s.plan
	identities := make(map[string]string, len(plan.Members))
	for _, m := range plan.Members {
		identities[m.Name] = m.Identity
	}
	s.acceptor = transport.NewAcceptor(plan.Member, policies, identities, plan.Link)
	for _, r := range plan.Outbound {
		p, ok := s.policies[r.Channel]
		if !ok {
			return fmt.Errorf("route %s: unknown channel %s", r.Listen, r.Channel)
		}
		peer := transport.Peer{Name: r.Peer, Address: r.PeerAddress, Identity: r.PeerIdentity}
		s.routes = append(s.routes, outboundRoute{Route: r, dialer: transport.NewDialer(p, plan.Member, peer, plan.Link)})
	}
	for _, d := range plan.Inbound {
		s.delivery[d.Channel] = d.Target
	}
	return nil
}

// Ready is closed once every listener is bound.
func (s *Sidecar) Ready() <-chan struct{} { return s.ready }

// Links returns the live links, oldest first.
func (s *Sidecar) Links() []LinkInfo {
	var out []LinkInfo
	for _, l := range s.links.all() {
		info := LinkInfo{ID: l.id, Peer: l.peer, Channel: l.channel, Direction: l.direction, Started: l.started}
		if pc := l.link.PeerCertificates(); len(pc) > 0 {
			info.PeerSerial = pc[0].SerialNumber.Text(16)
		}
		out = append(out, info)
	}
	return out
}

// Stores returns the credential store of each TLS channel.
func (s *Sidecar) Stores() map[string]*certs.Store { return s.stores }

// Run binds every listener, serves links until ctx is cancelled, then
// stops accepting, lets live links finish for up to DrainTimeout, cuts the
// rest and returns once every goroutine it started has ended. A listener
// that cannot be bound is an error before anything is served.
func (s *Sidecar) Run(ctx context.Context) error {
	listeners, err := s.listen()
	if err != nil {
		return err
	}
	var admin net.Listener
	if s.plan.Admin != "" {
		if admin, err = net.Listen("tcp", s.plan.Admin); err != nil {
			for _, l := range listeners {
				l.ln.Close()
			}
			return fmt.Errorf("admin listener: %w", err)
		}
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	if admin != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveAdmin(serveCtx, admin)
		}()
	}
	for _, l := range listeners {
		s.wg.Add(1)
		go s.acceptLoop(serveCtx, l)
	}
	watcher := s.newCertWatcher() // before ready: no change made after it is missed
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.housekeeping(serveCtx, watcher)
	}()
	if s.plan.ProbeInterval > 0 {
		for i := range s.routes {
			s.wg.Go(func() { s.probeLoop(serveCtx, &s.routes[i]) })
		}
	}
	for _, a := range s.acme {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := a.Run(serveCtx); err != nil {
				s.log.Error().Err(err).Msg("acme: renewal stopped; the current certificate stays in use until it expires")
			}
		}()
	}
	s.serving.Store(true)
	close(s.ready)
	s.log.Info().Str("listen", s.plan.Listen).Int("routes", len(s.routes)).Str("admin", s.plan.Admin).Msg("sidecar running")

	<-ctx.Done()
	s.serving.Store(false)
	for _, l := range listeners {
		l.ln.Close()
	}
	s.drain()
	stopServing()
	s.wg.Wait()
	s.log.Info().Msg("sidecar stopped")
	return nil
}

// drain waits for live links to end, then cuts those still open.
func (s *Sidecar) drain() {
	timeout := s.opts.DrainTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for s.links.count() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range s.links.close() {
		l.kill("sidecar shutting down")
	}
}

// boundListener is a listener and what it serves.
type boundListener struct {
	ln    *net.TCPListener
	route *outboundRoute // nil for the inbound listener
}

func (s *Sidecar) listen() ([]boundListener, error) {
	var out []boundListener
	fail := func(err error) ([]boundListener, error) {
		for _, l := range out {
			l.ln.Close()
		}
		return nil, err
	}
	ln, err := net.Listen("tcp", s.plan.Listen)
	if err != nil {
		return fail(fmt.Errorf("inbound listener: %w", err))
	}
	out = append(out, boundListener{ln: ln.(*net.TCPListener)})
	for i := range s.routes {
		r := &s.routes[i]
		ln, err := net.Listen("tcp", r.Listen)
		if err != nil {
			return fail(fmt.Errorf("outbound listener for %s (channel %s): %w", r.Peer, r.Channel, err))
		}
		out = append(out, boundListener{ln: ln.(*net.TCPListener), route: r})
	}
	return out, nil
}

// acceptLoop accepts connections until the listener is closed, backing off
// on temporary errors such as EMFILE (5 ms doubling to 1 s, as net/http).
func (s *Sidecar) acceptLoop(ctx context.Context, l boundListener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Str("listen", l.ln.Addr().String()).Dur("retry_in", delay).Msg("accept failed")
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		delay = 0
		s.admitConn(ctx, c, l.route)
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
	if s.plan.AllowedUIDs == nil {
		return true
	}
	uid, err := peerUID(c)
	if err == nil && slices.Contains(s.plan.AllowedUIDs, int(uid)) {
		return true
	}
	remote := c.RemoteAddr().String()
	_ = c.SetLinger(0)
	c.Close()
	s.metrics.outboundRefused.WithLabelValues("uid").Inc()
	if !s.logRate.allow("uid", time.Now()) {
		return false
	}
	ev := s.log.Warn().Str("remote", remote).Str("peer", route.Peer).Str("channel", route.Channel).Ints("allowed_uids", s.plan.AllowedUIDs)
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
	remote := c.RemoteAddr().String()
	_ = c.SetLinger(0)
	c.Close()
	counter := s.metrics.refused
	if dir == Outbound {
		counter = s.metrics.outboundRefused
	}
	counter.WithLabelValues("limit").Inc()
	if s.logRate.allow("limit", time.Now()) {
		s.log.Warn().Str("remote", remote).Str("dir", string(dir)).Str("peer", peer).Str("limit", limit).
			Int("value", s.plan.Limits.Value(limit)).Msg("connection refused: limit reached")
	}
}
