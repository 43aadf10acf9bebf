package proxy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/proxy/cluster"
)

// Reload results, the result label of groupwire_config_reloads_total.
const (
	reloadOK            = "ok"             // the new file is in force
	reloadUnchanged     = "unchanged"      // the file says what runs already
	reloadInvalid       = "invalid"        // the file (or its key material) has errors; nothing changed
	reloadRestartNeeded = "restart_needed" // it changes what only a restart can; nothing changed
	reloadFailed        = "failed"         // a new listener could not be bound; nothing changed
)

// ErrRestartNeeded is wrapped by a reload refused because the new file
// changes what only a restart can: the inbound listen address, the admin
// listener, the group's name or a channel's tls.acme (new or changed).
var ErrRestartNeeded = errors.New("restart needed")

// ErrNotRunning is returned by ReloadConfig before Run has bound its
// listeners, or after it stopped.
var ErrNotRunning = errors.New("sidecar not running")

// ReloadConfig replaces the running configuration with the plan load
// returns: the cluster file read again. Members added get their outbound
// listeners, members removed lose theirs and their live links ("removed
// from the group"), a peer's new address or identity applies to new links,
// and every live link is checked against the new channel policies (cut if
// its mode is no longer accepted or its peer no longer trusted). A file
// that cannot be loaded, or that changes what needs a restart, is refused
// and nothing changes. Each call logs one line and is counted in
// groupwire_config_reloads_total.
func (s *Sidecar) ReloadConfig(load func() (*cluster.Plan, error)) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.serveCtx == nil {
		return ErrNotRunning
	}
	old := s.current()
	plan, err := load()
	if errors.Is(err, cluster.ErrUnknownMember) {
		return s.reloadRefused(reloadRestartNeeded, fmt.Errorf("%w: this member, %s, is no longer in the file (a sidecar's member is set when it starts: to rename it, restart it with the new --member; to remove it, stop it): %w", ErrRestartNeeded, old.plan.Member, err))
	}
	if err != nil {
		return s.reloadRefused(reloadInvalid, err)
	}
	if err := restartNeeded(old.plan, plan); err != nil {
		return s.reloadRefused(reloadRestartNeeded, err)
	}
	if samePlan(old.plan, plan) {
		s.metrics.configReloaded(reloadUnchanged)
		s.log.Info().Msg("cluster file reloaded: unchanged")
		return nil
	}
	g, err := buildGeneration(plan, storeReuse{prev: old})
	if errors.Is(err, ErrRestartNeeded) {
		return s.reloadRefused(reloadRestartNeeded, err)
	}
	if err != nil {
		return s.reloadRefused(reloadInvalid, err)
	}
	bound, err := s.bindNewRoutes(g)
	if err != nil {
		return s.reloadRefused(reloadFailed, err)
	}
	if err := s.reloadDropIn(old.plan, plan); err != nil {
		for _, b := range bound {
			b.stop()
		}
		return s.reloadRefused(reloadFailed, err)
	}
	s.apply(old, g, bound)
	return nil
}

// reloadRefused counts and logs a refused reload and returns its error.
func (s *Sidecar) reloadRefused(result string, err error) error {
	s.metrics.configReloaded(result)
	ev := s.log.Error().Str("result", result)
	var ce *cluster.ConfigError
	if errors.As(err, &ce) {
		ev = ev.Strs("problems", problemStrings(ce.Problems))
	}
	ev.Err(err).Msg("cluster file reload refused; the running configuration stays")
	return fmt.Errorf("reload refused (%s): %w", result, err)
}

func problemStrings(ps []cluster.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// samePlan reports whether two plans put the same thing in force. Their
// warnings are left out: a certificate's "expires in N days" changes by
// itself, and a re-read file that says the same is still unchanged.
func samePlan(a, b *cluster.Plan) bool {
	x, y := *a, *b
	x.Warnings, y.Warnings = nil, nil
	return reflect.DeepEqual(&x, &y)
}

// captureName says how the member's traffic is captured, in the terms a
// restart is needed to change: the mode, the capture port, who installs
// the rules.
func captureName(p *cluster.Plan) string {
	if p.Capture == nil {
		return cluster.CaptureLoopback
	}
	return fmt.Sprintf("%s (capture_port %d, capture_rules %s)", cluster.CaptureTransparent, p.Capture.Port, p.Capture.Rules)
}

// restartNeeded names the changes from old to plan that a running sidecar
// cannot make.
func restartNeeded(old, plan *cluster.Plan) error {
	var changes []string
	for _, c := range []struct{ key, was, now string }{
		{"group", old.Group, plan.Group},
		{"listen (this member's inbound listener)", old.Listen, plan.Listen},
		{"admin", old.Admin, plan.Admin},
		{"capture", captureName(old), captureName(plan)},
	} {
		if c.was != c.now {
			changes = append(changes, fmt.Sprintf("%s %q → %q", c.key, c.was, c.now))
		}
	}
	if len(changes) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRestartNeeded, strings.Join(changes, "; "))
}

// apply puts generation g in force: routes swapped, moved, added and
// removed, links of removed members and channels cut, every live link
// checked against the new policies, the certificate watch renewed when its
// files changed. Called with reloadMu held.
func (s *Sidecar) apply(old, g *generation, bound map[pairKey]*routeListener) {
	s.gen.Store(g)
	s.admit.setLimits(g.plan.Limits)
	s.health.setPairs(g.routeKeys())
	d := s.swapRoutes(old, g, bound)
	d.cut = s.cutRemoved(g)
	for _, ch := range g.plan.Channels {
		d.cut += s.recheckChannel(ch.Name)
	}
	d.directCut = s.closeWindows(g)
	if !slices.Equal(old.storeList(), g.storeList()) || old.plan.ReloadInterval != g.plan.ReloadInterval {
		s.certWatch.stop()
		s.certWatch = s.startCertWatch(s.serveCtx, g)
	}
	d.describe(old.plan, g.plan)
	s.metrics.configReloaded(reloadOK)
	d.log(s.log.Info()).Msg("cluster file reloaded")
}

// swapRoutes makes the bound outbound listeners those of g.
func (s *Sidecar) swapRoutes(old, g *generation, bound map[pairKey]*routeListener) reloadDiff {
	var d reloadDiff
	probes := g.plan.ProbeInterval > 0
	probesChanged := old.plan.ProbeInterval != g.plan.ProbeInterval
	for k, rl := range s.listeners {
		_, kept := g.routes[k]
		if !kept || bound[k] != nil {
			rl.stop()
			delete(s.listeners, k)
			if !kept {
				d.routesRemoved = append(d.routesRemoved, k.String())
			}
		}
	}
	for _, k := range g.routeKeys() {
		r := g.routes[k]
		if rl := bound[k]; rl != nil {
			if _, had := old.routes[k]; had {
				d.routesMoved = append(d.routesMoved, k.String()+" → "+r.Listen)
			} else {
				d.routesAdded = append(d.routesAdded, k.String())
			}
			s.serveRoute(s.serveCtx, rl, probes)
			continue
		}
		rl := s.listeners[k]
		if prev := rl.route.Swap(r); prev.Route != r.Route {
			d.routesChanged = append(d.routesChanged, k.String())
		}
		if probesChanged {
			rl.cancel()
			s.serveProbe(s.serveCtx, rl, probes)
		}
	}
	return d
}

// cutRemoved cuts the live links of members and channels g no longer has.
func (s *Sidecar) cutRemoved(g *generation) int {
	cut := 0
	for _, l := range s.links.all() {
		reason := ""
		switch {
		case !g.hasMember(l.peer):
			reason = "removed from the group"
		case g.policies[l.channel] == nil:
			reason = "channel removed from the group"
		default:
			continue
		}
		if l.kill(reason) {
			cut++
			s.metrics.cut.WithLabelValues(l.channel, "removed").Inc()
			s.log.Warn().Str("peer", l.peer).Str("channel", l.channel).Str("dir", string(l.direction)).Msg("cutting link: " + reason)
		}
	}
	return cut
}

// String names a pair as "peer/channel".
func (k pairKey) String() string { return k.peer + "/" + k.channel }

// reloadDiff is what one reload changed, for its log line.
type reloadDiff struct {
	membersAdded, membersRemoved             []string
	routesAdded, routesRemoved, routesMoved  []string
	routesChanged, channelsChanged, settings []string
	cut                                      int
	directCut                                int // direct links cut: their onboarding window closed
}

// describe fills in the member, channel and settings changes.
func (d *reloadDiff) describe(old, plan *cluster.Plan) {
	was, now := memberNames(old), memberNames(plan)
	for _, m := range now {
		if !slices.Contains(was, m) {
			d.membersAdded = append(d.membersAdded, m)
		}
	}
	for _, m := range was {
		if !slices.Contains(now, m) {
			d.membersRemoved = append(d.membersRemoved, m)
		}
	}
	for _, ch := range plan.Channels {
		i := slices.IndexFunc(old.Channels, func(c cluster.ChannelPlan) bool { return c.Name == ch.Name })
		if i < 0 || !reflect.DeepEqual(old.Channels[i], ch) {
			d.channelsChanged = append(d.channelsChanged, ch.Name)
		}
	}
	d.settings = changedSettings(old, plan)
}

func memberNames(p *cluster.Plan) []string {
	out := make([]string, len(p.Members))
	for i, m := range p.Members {
		out[i] = m.Name
	}
	return out
}

// changedSettings names the group-wide settings that differ.
func changedSettings(old, plan *cluster.Plan) []string {
	var out []string
	for _, c := range []struct {
		key  string
		same bool
	}{
		{"link timeouts", old.Link == plan.Link},
		{"idle_timeout", old.IdleTimeout == plan.IdleTimeout},
		{"half_close_timeout", old.HalfCloseTimeout == plan.HalfCloseTimeout},
		{"probe_interval", old.ProbeInterval == plan.ProbeInterval},
		{"drain_timeout", old.DrainTimeout == plan.DrainTimeout},
		{"reload_interval", old.ReloadInterval == plan.ReloadInterval},
		{"close_on_expiry", old.CloseOnExpiry == plan.CloseOnExpiry},
		{"limits", old.Limits == plan.Limits},
		{"allowed_uids", slices.Equal(old.AllowedUIDs, plan.AllowedUIDs)},
		{"local_ip", old.LocalIP == plan.LocalIP},
	} {
		if !c.same {
			out = append(out, c.key)
		}
	}
	return out
}

// log adds the diff's fields to ev.
func (d reloadDiff) log(ev *zerolog.Event) *zerolog.Event {
	for _, f := range []struct {
		key  string
		vals []string
	}{
		{"members_added", d.membersAdded}, {"members_removed", d.membersRemoved},
		{"routes_added", d.routesAdded}, {"routes_removed", d.routesRemoved},
		{"routes_moved", d.routesMoved}, {"routes_changed", d.routesChanged},
		{"channels_changed", d.channelsChanged}, {"settings_changed", d.settings},
	} {
		if len(f.vals) > 0 {
			ev = ev.Strs(f.key, f.vals)
		}
	}
	return ev.Int("links_cut", d.cut).Int("direct_links_cut", d.directCut)
}
