// Package capture owns drop-in mode's packet rules (capture: transparent):
// one nftables table, groupwire's alone, in the member's network namespace.
//   - capture_out (nat, output) redirects the member's new connections to
//     its peers' addresses on the channel ports to the sidecar's capture
//     listener on 127.0.0.1, and returns early for the sidecar's own
//     sockets (a mark);
//   - guard_in (filter, input) resets other hosts' connections to the
//     member's own channel ports, so that they are reached through the
//     sidecar's link port only;
//   - guard_out (filter, output) resets the member's packets to a peer's
//     channel port, or from its own, that did not pass through the sidecar
//     (a connection older than the rules);
//   - reply_route (route, output) brings the member's replies on the
//     connections the sidecar delivered back to it (below).
//
// While a channel's onboarding window is open (Rules.Open, Target.Open),
// guard_in accepts the group's member addresses on its ports and guard_out
// lets its plaintext pass: members without a sidecar yet still talk to
// this one directly.
//
// The table stays in place when the sidecar exits, killed or not: a
// member whose sidecar is down has its peer connections refused at
// 127.0.0.1 and its ports closed, and never talks plaintext across hosts.
// Install replaces the whole table in one netlink transaction, so there is
// no moment without rules. Rules.Text prints the same rules in nft syntax,
// for operators who install them themselves (capture_rules: external).
//
// Delivery keeps the dialling peer's address: the sidecar connects to its
// member from the peer's IP (IP_TRANSPARENT, see Transparent), with
// ReplyMark on the socket. reply_route keeps that mark on the connection
// (a conntrack mark) and puts it on the member's replies, and a policy rule
// sends marked packets to a table whose one route is local: they come back
// to the sidecar's socket, as in a TPROXY setup.
//
// The rules are made over netlink with github.com/google/nftables and
// github.com/vishvananda/netlink; nothing shells out. They are Linux's:
// elsewhere Install and OriginalDst fail.
package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/groupwire/groupwire/proxy/cluster"
)

// Table is the name of groupwire's nftables table (family inet).
const Table = "groupwire"

// ErrUnsupported is returned where the host cannot capture (not Linux).
var ErrUnsupported = errors.New("capture: transparent needs Linux nftables")

// Target is one captured address: a peer member's channel port at one of
// its addresses.
type Target struct {
	Member, Channel string
	Addr            netip.AddrPort
	Open            bool // the channel's onboarding window is open: no output guard
}

// ReplyMark marks the member's replies to a peer's address on its channel
// ports, and ReplyTable is the routing table that delivers them locally,
// back to the sidecar's transparent socket.
const (
	ReplyMark  uint32 = 0x4758
	ReplyTable        = 0x4758
)

// Rules are a capture plan with every peer's address resolved: what
// Install puts in force and Text prints.
type Rules struct {
	Port    uint16 // the capture listener's port on 127.0.0.1
	Mark    uint32 // the sidecar's own sockets carry it; the rules skip them
	Targets []Target
	Guarded []uint16 // this member's channel ports, closed to other hosts
	Open    []uint16 // the Guarded ports the group's members may still reach directly (onboarding window)
}

// Resolver looks up a host's addresses (net.DefaultResolver does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Resolve turns a capture plan into rules: each target's host, an IP or a
// name from the cluster file, becomes its IPv4 addresses, looked up within
// resolveTimeout. The addresses come from the cluster file alone; a
// captured connection is mapped back through them, never through a
// reverse lookup.
func Resolve(ctx context.Context, c *cluster.CapturePlan, r Resolver) (*Rules, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	rules := &Rules{Port: uint16(c.Port), Mark: c.Mark}
	for _, p := range c.Guarded {
		rules.Guarded = append(rules.Guarded, uint16(p))
	}
	for _, p := range c.Open {
		rules.Open = append(rules.Open, uint16(p))
	}
	for _, t := range c.Targets {
		addrs, err := lookup(ctx, r, t.Host)
		if err != nil {
			return nil, fmt.Errorf("capture: member %s's address %s: %w", t.Member, t.Host, err)
		}
		for _, a := range addrs {
			rules.Targets = append(rules.Targets, Target{Member: t.Member, Channel: t.Channel, Addr: netip.AddrPortFrom(a, uint16(t.Port)), Open: t.Open})
		}
	}
	return rules, rules.checkDistinct()
}

// resolveTimeout bounds the lookup of the peers' addresses for the rules.
const resolveTimeout = 10 * time.Second

// Enforce is what a sidecar does with c at start and on every reload:
// resolve the rules and, when it manages them, put them in force; when
// they are external, require that someone did (serving without them would
// let the member talk plaintext).
func Enforce(ctx context.Context, c *cluster.CapturePlan, r Resolver) (*Rules, error) {
	rules, err := Resolve(ctx, c, r)
	if err != nil {
		return nil, err
	}
	if c.Rules == cluster.CaptureRulesManaged {
		return rules, Install(rules)
	}
	present, err := Present()
	if err == nil && !present {
		err = fmt.Errorf("capture: capture_rules is external, but nftables table inet %s is not installed in this network namespace (install what `groupwire check` prints, or run `groupwire capture`, first)", Table)
	}
	return rules, err
}

// lookup returns host's IPv4 addresses, sorted.
func lookup(ctx context.Context, r Resolver, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Unmap().Is4() {
			return nil, errors.New("IPv6 addresses are not captured yet (use an IPv4 address)")
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	all, err := r.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range all {
		out = append(out, a.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// checkDistinct refuses two targets at one address and port: a captured
// connection could not be told apart.
func (r *Rules) checkDistinct() error {
	seen := map[netip.AddrPort]Target{}
	for _, t := range r.Targets {
		if o, ok := seen[t.Addr]; ok {
			return fmt.Errorf("capture: %s is both %s's channel %s and %s's channel %s", t.Addr, o.Member, o.Channel, t.Member, t.Channel)
		}
		seen[t.Addr] = t
	}
	return nil
}

// Lookup maps a captured connection's original destination to the peer
// and channel it was meant for.
func (r *Rules) Lookup(dst netip.AddrPort) (Target, bool) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	for _, t := range r.Targets {
		if t.Addr == dst {
			return t, true
		}
	}
	return Target{}, false
}

// Text is the rules in nft syntax, as `nft -f` takes them: what Install
// puts in force, for operators who install the rules themselves.
func (r *Rules) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", Table)
	fmt.Fprintf(&b, "\tchain capture_out {\n\t\ttype nat hook output priority -100; policy accept;\n")
	fmt.Fprintf(&b, "\t\tmeta mark %#x return\n", r.Mark)
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "\t\tip daddr %s tcp dport %d tcp flags & (syn | ack) == syn redirect to :%d comment \"%s/%s\"\n", t.Addr.Addr(), t.Addr.Port(), r.Port, t.Member, t.Channel)
	}
	fmt.Fprintf(&b, "\t}\n\tchain guard_in {\n\t\ttype filter hook input priority 0; policy accept;\n")
	fmt.Fprintf(&b, "\t\tiifname \"lo\" accept\n")
	for _, p := range r.Open {
		for _, a := range r.PeerAddrs() {
			fmt.Fprintf(&b, "\t\tip saddr %s tcp dport %d accept comment \"onboarding window\"\n", a, p)
		}
	}
	for _, p := range r.Guarded {
		fmt.Fprintf(&b, "\t\ttcp dport %d reject with tcp reset\n", p)
	}
	fmt.Fprintf(&b, "\t}\n\tchain guard_out {\n\t\ttype filter hook output priority 0; policy accept;\n")
	fmt.Fprintf(&b, "\t\tmeta mark %#x accept\n\t\tmeta mark %#x accept\n\t\toifname \"lo\" accept\n", r.Mark, ReplyMark)
	for _, t := range r.Targets {
		if !t.Open {
			fmt.Fprintf(&b, "\t\tip daddr %s tcp dport %d reject with tcp reset comment \"%s/%s\"\n", t.Addr.Addr(), t.Addr.Port(), t.Member, t.Channel)
		}
	}
	for _, p := range r.closedPorts() {
		fmt.Fprintf(&b, "\t\tip protocol tcp tcp sport %d reject with tcp reset\n", p)
	}
	fmt.Fprintf(&b, "\t}\n\tchain reply_route {\n\t\ttype route hook output priority -150; policy accept;\n")
	fmt.Fprintf(&b, "\t\tmeta mark %#x ct mark set %#x\n\t\tct mark %#x meta mark set %#x\n", ReplyMark, ReplyMark, ReplyMark, ReplyMark)
	fmt.Fprintf(&b, "\t}\n}\n")
	fmt.Fprintf(&b, "# and the policy route for the marked replies (iproute2):\n")
	fmt.Fprintf(&b, "#   ip rule add fwmark %#x lookup %d\n#   ip route add local 0.0.0.0/0 dev lo table %d\n", ReplyMark, ReplyTable, ReplyTable)
	return b.String()
}

// PeerAddrs are the peers' distinct IPs, sorted: the sources the sidecar
// delivers from, and so the destinations of the member's replies.
func (r *Rules) PeerAddrs() []netip.Addr {
	var out []netip.Addr
	for _, t := range r.Targets {
		out = append(out, t.Addr.Addr())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// closedPorts are the Guarded ports whose onboarding window is closed.
func (r *Rules) closedPorts() []uint16 {
	var out []uint16
	for _, p := range r.Guarded {
		if !slices.Contains(r.Open, p) {
			out = append(out, p)
		}
	}
	return out
}

// Listen is the capture listener's address.
func (r *Rules) Listen() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(r.Port)))
}

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// HasNetAdmin reports whether this process holds CAP_NET_ADMIN (in its
// effective set, as /proc/self/status says): what installing the rules,
// and marking the sidecar's sockets, needs.
func HasNetAdmin() bool {
	status, err := readStatus()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<capNetAdmin) != 0
		}
	}
	return false
}
