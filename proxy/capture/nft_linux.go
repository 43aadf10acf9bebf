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
	r.addReplyRoute(c, t)
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("capture: install nftables table inet %s: %w (capture: transparent needs CAP_NET_ADMIN in the member's network namespace; with capture_rules: external, install the rules `groupwire check` prints)", Table, err)
		}
		return fmt.Errorf("capture: install nftables table inet %s: %w", Table, err)
	}
	return installReplyRoute()
}

// addReplyRoute adds the route chain that marks the member's replies to a
// peer's address from a channel port, so that the policy route brings
// them back to the sidecar's transparent socket.
func (r *Rules) addReplyRoute(c *nftables.Conn, t *nftables.Table) {
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "reply_route", Table: t, Type: nftables.ChainTypeRoute,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle, Policy: &accept})
	for _, a := range r.PeerAddrs() {
		ip := a.As4()
		for _, p := range r.Guarded {
			exprs := append(ipv4TCP(), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
				&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(ReplyMark)},
				&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		}
	}
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
		exprs = append(exprs, &expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)},
			&expr.Redir{RegisterProtoMin: 1})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, target.Member+"/"+target.Channel)})
	}
}

// addGuard adds the input chain: the loopback interface passes (the
// sidecar delivering to its member), other hosts' connections to the
// member's channel ports are reset.
func (r *Rules) addGuard(c *nftables.Conn, t *nftables.Table) {
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "guard_in", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, p := range r.Guarded {
		exprs := append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		}, dport(p)...)
		exprs = append(exprs, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
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
