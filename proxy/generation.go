package proxy

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/proxy/cluster"
	"github.com/groupwire/groupwire/transport"
)

// generation is everything the sidecar derives from one plan: the part a
// cluster-file reload replaces as a whole. New links take the current
// generation; live links keep running and are checked against the new one.
type generation struct {
	plan     *cluster.Plan
	stores   map[string]*certs.Store // by channel; channels with TLS material only
	policies map[string]*transport.Policy
	acceptor *transport.Acceptor
	routes   map[pairKey]*outboundRoute // by peer and channel
	delivery map[string]string          // channel → member service address
}

// outboundRoute is one outbound listener's destination and its dialer.
type outboundRoute struct {
	cluster.Route
	dialer *transport.Dialer
	mode   transport.Mode // what the dialer runs
}

// storeReuse lets a new generation keep the stores of the previous one
// whose files did not change, so their watch, their reload history and
// their ACME attachment carry over.
type storeReuse struct {
	prev      *generation
	newACME   func(cluster.ChannelPlan, *certs.Store) error // nil: ACME cannot be set up (a reload)
	newSPIFFE func(cluster.ChannelPlan, *certs.Store) error // nil: SPIFFE cannot be set up (a reload)
}

// buildGeneration loads every channel's key material (or keeps the
// previous generation's store of unchanged files) and makes the policies,
// the acceptor, the dialers and the delivery addresses of plan.
func buildGeneration(plan *cluster.Plan, reuse storeReuse) (*generation, error) {
	g := &generation{
		plan:     plan,
		stores:   make(map[string]*certs.Store),
		policies: make(map[string]*transport.Policy),
		routes:   make(map[pairKey]*outboundRoute),
		delivery: make(map[string]string),
	}
	var policies []*transport.Policy
	for _, ch := range plan.Channels {
		p, err := g.newPolicy(ch, reuse)
		if err != nil {
			return nil, err
		}
		g.policies[ch.Name] = p
		policies = append(policies, p)
	}
	identities := make(map[string]string, len(plan.Members))
	for _, m := range plan.Members {
		identities[m.Name] = m.Identity
	}
	g.acceptor = transport.NewAcceptor(plan.Member, policies, identities, plan.Link)
	for _, r := range plan.Outbound {
		p, ok := g.policies[r.Channel]
		if !ok {
			return nil, fmt.Errorf("route %s: unknown channel %s", r.Listen, r.Channel)
		}
		peer := transport.Peer{Name: r.Peer, Address: r.PeerAddress, Identity: r.PeerIdentity}
		g.routes[pairKey{r.Peer, r.Channel}] = &outboundRoute{Route: r, dialer: transport.NewDialer(p, plan.Member, peer, plan.Link), mode: p.Mode}
	}
	for _, d := range plan.Inbound {
		g.delivery[d.Channel] = d.Target
	}
	return g, nil
}

// newPolicy makes a channel's checked policy, with its key material: the
// previous generation's store when the channel's files and ACME settings
// are the same, else a freshly loaded one.
func (g *generation) newPolicy(ch cluster.ChannelPlan, reuse storeReuse) (*transport.Policy, error) {
	p := &transport.Policy{Channel: ch.Name, Mode: ch.Mode, AcceptModes: ch.AcceptModes, Params: ch.Params}
	if p.NeedsTLS() {
		store, err := g.channelStore(ch, reuse)
		if err != nil {
			return nil, err
		}
		g.stores[ch.Name] = store
		p.Creds = store
		// ACME certificates often carry serverAuth only; links are
		// symmetric, so a dialing peer may present one too.
		p.ServerAuthClients = ch.ACME != nil
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// channelStore returns the channel's credential store.
func (g *generation) channelStore(ch cluster.ChannelPlan, reuse storeReuse) (*certs.Store, error) {
	if prev := reuse.prev; prev != nil {
		if old, ok := prev.channel(ch.Name); ok && prev.stores[ch.Name] != nil && old.Source == ch.Source && samePtr(old.ACME, ch.ACME) && samePtr(old.SPIFFE, ch.SPIFFE) {
			return prev.stores[ch.Name], nil
		}
	}
	store, err := certs.NewStore("channel "+ch.Name, ch.Source)
	if err != nil {
		return nil, err // names the store: "channel NAME: load ..."
	}
	if ch.SPIFFE != nil {
		if reuse.newSPIFFE == nil {
			return nil, fmt.Errorf("%w: channel %s: a new or changed tls.spiffe", ErrRestartNeeded, ch.Name)
		}
		if err := reuse.newSPIFFE(ch, store); err != nil {
			return nil, fmt.Errorf("channel %s: %w", ch.Name, err)
		}
	}
	if ch.ACME != nil {
		if reuse.newACME == nil {
			return nil, fmt.Errorf("%w: channel %s: a new or changed tls.acme", ErrRestartNeeded, ch.Name)
		}
		if err := reuse.newACME(ch, store); err != nil {
			return nil, fmt.Errorf("channel %s: %w", ch.Name, err)
		}
	}
	return store, nil
}

// samePtr reports whether two optional settings are the same: both
// absent, or equal.
func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// channel returns the plan of the named channel.
func (g *generation) channel(name string) (cluster.ChannelPlan, bool) {
	for _, ch := range g.plan.Channels {
		if ch.Name == name {
			return ch, true
		}
	}
	return cluster.ChannelPlan{}, false
}

// hasMember reports whether name is a member of the generation's group.
func (g *generation) hasMember(name string) bool {
	for _, m := range g.plan.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// storeList returns the stores (one per TLS channel), sorted by channel.
func (g *generation) storeList() []*certs.Store {
	out := make([]*certs.Store, 0, len(g.stores))
	for _, name := range slices.Sorted(maps.Keys(g.stores)) {
		out = append(out, g.stores[name])
	}
	return out
}

// routeKeys returns the generation's pairs, sorted.
func (g *generation) routeKeys() []pairKey {
	keys := make([]pairKey, 0, len(g.routes))
	for k := range g.routes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].peer != keys[j].peer {
			return keys[i].peer < keys[j].peer
		}
		return keys[i].channel < keys[j].channel
	})
	return keys
}
