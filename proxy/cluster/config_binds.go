package cluster

import (
	"fmt"
	"net/netip"
)

// bind is one socket the planned member's host will hold: the member's own
// service ports, the sidecar's inbound, admin and outbound listeners.
type bind struct {
	addr   bindAddr
	path   string     // key path that puts it there
	what   string     // for messages
	origin netip.Addr // local_ip of the member owning the port; invalid for listen/admin
}

// checkBinds refuses two sockets of the planned member's host that would
// collide: an outbound listener (a peer's port on this member's local_ip)
// on the member's own service port, on the inbound or admin listener, or on
// another outbound listener. Collisions between ports of members sharing a
// local_ip are left to checkPortConflicts, which already names them.
func checkBinds(me member, members []member, listen, admin listener, ps *problems) {
	if !me.ip.IsValid() {
		return
	}
	var binds []bind
	for _, ch := range sortedKeys(me.cfg.Ports) {
		binds = append(binds, bind{
			addr: bindAddr{IP: me.ip, Port: me.cfg.Ports[ch]}, path: "members." + me.name + ".ports." + ch,
			what: fmt.Sprintf("%s's own port for channel %s", me.name, ch), origin: me.ip,
		})
	}
	if listen.path != "" {
		binds = append(binds, bind{addr: listen.addr, path: listen.path, what: "the inbound listener"})
	}
	if admin.path != "" {
		binds = append(binds, bind{addr: admin.addr, path: admin.path, what: "the admin listener"})
	}
	for _, peer := range members {
		if peer.name == me.name || !peer.ip.IsValid() {
			continue
		}
		for _, ch := range sortedKeys(peer.cfg.Ports) {
			binds = append(binds, bind{
				addr: bindAddr{IP: me.ip, Port: peer.cfg.Ports[ch]}, path: "members." + peer.name + ".ports." + ch,
				what: fmt.Sprintf("the outbound listener to %s (channel %s)", peer.name, ch), origin: peer.ip,
			})
		}
	}
	for j := range binds {
		for i := range j {
			a, b := binds[i], binds[j]
			if !a.addr.overlaps(b.addr) || (a.origin.IsValid() && a.origin == b.origin) {
				continue
			}
			ps.add(b.path, "on %s, %s %s collides with %s %s", me.name, b.what, b.addr, a.what, a.addr)
			break
		}
	}
}
