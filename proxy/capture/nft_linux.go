package capture

import (
	"errors"
	"fmt"

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
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "reply_route", Table: t, Type: nftables.ChainTypeRoute,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle, Policy: &accept})
	mark := binaryutil.NativeEndian.PutUint32(ReplyMark)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
		&expr.Immediate{Register: 1, Data: mark},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
		&expr.Immediate{Register: 1, Data: mark},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}})
}

// addCapture adds the output chain: the sidecar's own sockets pass, every
// target is redirected to the capture listener.
func (r *Rules) addCapture(c *nftables.Conn, t *nftables.Table) {
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "capture_out", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(r.Mark)},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	for _, target := range r.Targets {
		ip := target.Addr.Addr().As4()
		exprs := append(ipv4TCP(), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]})
		exprs = append(exprs, dport(target.Addr.Port())...)
		exprs = append(exprs, synOnly()...)
		exprs = append(exprs, &expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)},
			&expr.Redir{RegisterProtoMin: 1})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, target.Member+"/"+target.Channel)})
	}
	for _, p := range r.closedPorts() {
		exprs := append(ipv4TCP(), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
}

// addGuard adds the input chain: the loopback interface passes (the
// sidecar delivering to its member), the group's members pass on the ports
// whose onboarding window is open, and every other host's connection to
// the member's channel ports is reset.
func (r *Rules) addGuard(c *nftables.Conn, t *nftables.Table) {
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "guard_in", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, p := range r.Open {
		for _, a := range r.PeerAddrs() {
			ip := a.As4()
			exprs := append(ipv4TCP(), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]})
			exprs = append(append(exprs, dport(p)...), &expr.Verdict{Kind: expr.VerdictAccept})
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs, UserData: userdata.AppendString(nil, userdata.TypeComment, "onboarding window")})
		}
	}
	for _, p := range r.Guarded {
		exprs := append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		}, dport(p)...)
		exprs = append(exprs, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
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
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "guard_out", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	for _, m := range []uint32{r.Mark, ReplyMark} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(m)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, target := range r.Targets {
		if target.Open {
			continue
		}
		ip := target.Addr.Addr().As4()
		exprs := append(ipv4TCP(), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]})
		exprs = append(append(exprs, dport(target.Addr.Port())...), &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, target.Member+"/"+target.Channel)})
	}
	for _, p := range r.closedPorts() {
		exprs := append(ipv4TCP(), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
}

// ipv4TCP matches IPv4 TCP packets.
func ipv4TCP() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

// dport matches the TCP destination port p.
func dport(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
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
