package proxy

import (
	"net"
	"net/netip"
	"sync"

	"github.com/groupwire/groupwire/proxy/cluster"
)

// admission enforces the plan's limits on connections that are not yet
// established links: inbound ones until HELLO has been checked, outbound
// ones until their link is up, and established links per peer and channel.
// Each admit returns a release to call when the connection leaves that
// stage (calling it again does nothing), or false when the limit is
// reached.
type admission struct {
	limits cluster.Limits

	mu        sync.Mutex
	inbound   int                // inbound connections before HELLO
	perSource map[netip.Addr]int // the same per remote IP
	pending   int                // loopback connections waiting for a link
	links     map[pairKey]int    // established links per peer and channel
}

// pairKey names one peer and channel.
type pairKey struct{ peer, channel string }

func newAdmission(l cluster.Limits) *admission {
	return &admission{limits: l, perSource: make(map[netip.Addr]int), links: make(map[pairKey]int)}
}

// setLimits puts new limits in force for connections admitted from now on.
func (a *admission) setLimits(l cluster.Limits) {
	a.mu.Lock()
	a.limits = l
	a.mu.Unlock()
}

// handshake admits an inbound connection from remote until HELLO is
// checked. It names the limit reached when it refuses.
func (a *admission) handshake(remote net.Addr) (release func(), limit string) {
	ip := sourceIP(remote)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.inbound >= a.limits.MaxHandshakes:
		return nil, "max_handshakes"
	case a.perSource[ip] >= a.limits.MaxHandshakesPerSource:
		return nil, "max_handshakes_per_source"
	}
	a.inbound++
	a.perSource[ip]++
	return sync.OnceFunc(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.inbound--
		if a.perSource[ip]--; a.perSource[ip] == 0 {
			delete(a.perSource, ip)
		}
	}), ""
}

// loopback admits a local connection until its link is up.
func (a *admission) loopback() (release func(), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending >= a.limits.MaxLoopbackPending {
		return nil, false
	}
	a.pending++
	return sync.OnceFunc(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.pending--
	}), true
}

// link admits one more established link to peer on channel, for as long
// as the link lives.
func (a *admission) link(peer, channel string) (release func(), ok bool) {
	k := pairKey{peer, channel}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.links[k] >= a.limits.MaxLinksPerPeer {
		return nil, false
	}
	a.links[k]++
	return sync.OnceFunc(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.links[k]--; a.links[k] == 0 {
			delete(a.links, k)
		}
	}), true
}

// inFlight returns the connections not yet established links.
func (a *admission) inFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inbound + a.pending
}

// sourceIP is the IP of a remote address, IPv4-mapped IPv6 unmapped.
func sourceIP(addr net.Addr) netip.Addr {
	if ta, ok := addr.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
