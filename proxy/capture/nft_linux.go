package capture

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Install puts the rules in force in this process's network namespace:
// groupwire's table is replaced whole in one netlink transaction, so the
// old rules hold until the new ones do. It needs CAP_NET_ADMIN there.
func Install(r *Rules) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("capture: open nftables: %w", err)
	}
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	c.AddTable(t) // so that the delete below finds it on a first install
	c.DelTable(t)
	c.AddTable(t)
	r.addCapture(c, t)
	r.addGuard(c, t)
	r.addGuardOut(c, t)
	r.addReplyRoute(c, t)
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("capture: install nftables table inet %s: %w (capture: transparent needs CAP_NET_ADMIN in the member's network namespace; with capture_rules: external, install the rules `groupwire check` prints)", Table, err)
		}
		return fmt.Errorf("capture: install nftables table inet %s: %w", Table, err)
	}
	return installReplyRoute()
}

// addReplyRoute adds the route chain that brings the member's replies on
// the connections the sidecar delivered back to the sidecar's transparent
// socket: the delivery socket carries ReplyMark, its connection keeps it
// as a conntrack mark, and every packet of that connection is marked for
// the policy route. Connections that did not come through the sidecar (a
// peer with no sidecar yet, during the onboarding window, or one made
// before the rules) are left alone.
func (r *Rules) addReplyRoute(c *nftables.Conn, t *nftables.Table) {
	ch := addChain(c, t, "reply_route", nftables.ChainTypeRoute, nftables.ChainHookOutput, nftables.ChainPriorityMangle)
	mark := binaryutil.NativeEndian.PutUint32(ReplyMark)
	addRule(c, ch, "", markIs(ReplyMark), &expr.Immediate{Register: 1, Data: mark},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
	addRule(c, ch, "", []expr.Any{&expr.Ct{Key: expr.CtKeyMARK, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark}},
		&expr.Immediate{Register: 1, Data: mark}, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
}

// addCapture adds the output chain: the sidecar's own sockets pass, every
// target's new connections are redirected to the capture listener.
func (r *Rules) addCapture(c *nftables.Conn, t *nftables.Table) {
	ch := addChain(c, t, "capture_out", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	addRule(c, ch, "", markIs(r.Mark), &expr.Verdict{Kind: expr.VerdictReturn})
	for _, target := range r.Targets {
		addRule(c, ch, target.Member+"/"+target.Channel, append(toTarget(target), synOnly()...),
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)}, &expr.Redir{RegisterProtoMin: 1})
	}
}

// addGuard adds the input chain: the loopback interface passes (the
// sidecar delivering to its member), the group's members pass on the ports
// whose onboarding window is open, and every other host's connection to
// the member's channel ports is reset.
func (r *Rules) addGuard(c *nftables.Conn, t *nftables.Table) {
	ch := addChain(c, t, "guard_in", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	addRule(c, ch, "", ifIs(expr.MetaKeyIIFNAME, "lo"), acceptIt)
	for _, p := range r.Open {
		for _, a := range r.PeerAddrs() {
			addRule(c, ch, "onboarding window", concat(ipv4TCP(), addrIs(srcAddr, a), portIs(dstPort, p)), acceptIt)
		}
	}
	for _, p := range r.Guarded { // IPv4 and IPv6 alike: the member's ports stay closed to both
		addRule(c, ch, "", concat(tcpOnly(), portIs(dstPort, p)), resetIt)
	}
}

// addGuardOut adds the output filter chain: a packet the member sends to
// another host, to a peer's channel address or from its own channel port,
// that did not go through the sidecar (a connection made before the rules,
// or one that slipped past them) is reset, unless the channel's onboarding
// window is open. The sidecar's sockets and the member's replies on the
// connections it delivered carry marks; captured connections reach this
// chain already redirected to 127.0.0.1.
func (r *Rules) addGuardOut(c *nftables.Conn, t *nftables.Table) {
	ch := addChain(c, t, "guard_out", nftables.ChainTypeFilter, nftables.ChainHookOutput, nftables.ChainPriorityFilter)
	addRule(c, ch, "", markIs(r.Mark), acceptIt)
	addRule(c, ch, "", markIs(ReplyMark), acceptIt)
	addRule(c, ch, "", ifIs(expr.MetaKeyOIFNAME, "lo"), acceptIt)
	for _, target := range r.Targets {
		if !target.Open {
			addRule(c, ch, target.Member+"/"+target.Channel, toTarget(target), resetIt)
		}
	}
	for _, p := range r.closedPorts() {
		addRule(c, ch, "", concat(ipv4TCP(), portIs(srcPort, p)), resetIt)
	}
}

// Verdicts the chains share.
var (
	acceptIt = &expr.Verdict{Kind: expr.VerdictAccept}
	resetIt  = &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
)

// addChain adds a base chain of type typ on hook at prio, policy accept.
func addChain(c *nftables.Conn, t *nftables.Table, name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: &policy})
}

// addRule adds a rule to ch: the matches, then the statements, with a
// comment when it is not "" (nft list shows it, as Rules.Text does).
func addRule(c *nftables.Conn, ch *nftables.Chain, comment string, matches []expr.Any, statements ...expr.Any) {
	rule := &nftables.Rule{Table: ch.Table, Chain: ch, Exprs: append(matches, statements...)}
	if comment != "" {
		rule.UserData = userdata.AppendString(nil, userdata.TypeComment, comment)
	}
	c.AddRule(rule)
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// toTarget matches IPv4 TCP to the target's address and port.
func toTarget(target Target) []expr.Any {
	return concat(ipv4TCP(), addrIs(dstAddr, target.Addr.Addr()), portIs(dstPort, target.Addr.Port()))
}

// markIs matches packets carrying mark m.
func markIs(m uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(m)}}
}

// ifIs matches the input or output interface (key) named name.
func ifIs(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name)}}
}

// Offsets of the fields the rules match: in the IPv4 header, and in the
// TCP header.
const (
	srcAddr, dstAddr = 12, 16
	srcPort, dstPort = 0, 2
)

// addrIs matches the IPv4 address a at offset (srcAddr or dstAddr).
func addrIs(offset uint32, a netip.Addr) []expr.Any {
	ip := a.As4()
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]}}
}

// portIs matches the TCP port p at offset (srcPort or dstPort).
func portIs(offset uint32, p uint16) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)}}
}

// ipv4TCP matches IPv4 TCP packets.
func ipv4TCP() []expr.Any {
	return append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}, tcpOnly()...)
}

// tcpOnly matches TCP packets of either IP family.
func tcpOnly() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

// synOnly matches a connection's first packet (SYN without ACK). The
// capture redirects new connections only: a connection that was open
// before the rules, which conntrack picks up mid-stream, is not sent to
// the capture listener, which would reset it. (guard_out resets it once
// its channel's onboarding window is closed.)
func synOnly() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpSYN | tcpACK}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{tcpSYN}},
	}
}

// TCP header flags.
const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

// ifname is an interface name as the kernel compares it (IFNAMSIZ bytes).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Present reports whether groupwire's table is installed in this
// process's network namespace: with capture_rules: external, the sidecar
// checks that someone did install it before it serves.
func Present() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("capture: open nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("capture: list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == Table {
			return true, nil
		}
	}
	return false, nil
}
