package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport"
)

// member is one member of the group with its strings expanded and its
// addresses parsed; fields are zero where a problem was recorded.
type member struct {
	name     string
	cfg      memberConfig // expanded
	host     string       // host of address
	port     int          // port of address
	identity string       // identity, or host of address
	ip       netip.Addr   // local_ip
}

// ErrUnknownMember is what Plan returns, wrapped, for a member the file
// does not list.
var ErrUnknownMember = errors.New("unknown member")

// Plan derives what member's sidecar does: ${VAR} references are expanded
// from env (GROUPWIRE_MEMBER is always member), listen and admin
// templates are evaluated, TLS options are inherited and parsed, and every
// check that needs those values is made. All problems are returned together
// as a *ConfigError. A nil env is an empty environment.
func (c *Config) Plan(member string, env func(string) (string, bool)) (*Plan, error) {
	if _, ok := c.raw.Members[member]; !ok {
		return nil, fmt.Errorf("cluster file %s: %w %q (members: %s)", c.file, ErrUnknownMember, member, strings.Join(c.Members(), ", "))
	}
	var ps problems
	x := newExpander(withMember(env, member), &ps)
	raw := &c.raw

	group := x.expand("group", raw.Group)
	top := x.tls("tls", raw.TLS)
	channels := make([]ChannelPlan, 0, len(raw.Channels))
	for _, name := range sortedKeys(raw.Channels) {
		chPath := "channels." + name + ".tls"
		channels = append(channels, planChannel(name, top, x.tls(chPath, raw.Channels[name].TLS), c.dir, x.failed, &ps))
	}
	members := resolveMembers(raw, x)
	checkUnique(members, &ps)
	transparent := raw.Capture == CaptureTransparent
	if transparent {
		checkCapturePorts(members, raw.capturePort(), &ps)
	} else {
		checkPortConflicts(members, &ps)
	}
	me := members[sort.Search(len(members), func(i int) bool { return members[i].name >= member })]
	listen, admin := planListeners(me, raw, x)
	if transparent {
		// Drop-in mode binds no outbound listener, and the member's own
		// ports are on its own address (checkCapturePorts has those); the
		// sidecar's own listeners must still not collide.
		bare := me
		bare.cfg.Ports = nil
		checkBinds(bare, nil, listen, admin, &ps)
	} else {
		checkBinds(me, members, listen, admin, &ps)
	}

	limits := raw.Limits.resolve(&ps)
	uids := allowedUIDs(raw, member, &ps)
	if err := ps.err(c.file); err != nil {
		return nil, err
	}
	p := &Plan{
		Limits:         limits,
		AllowedUIDs:    uids,
		Group:          group,
		Member:         member,
		Listen:         listen.addr.String(),
		LocalIP:        me.ip.String(),
		Channels:       channels,
		ReloadInterval: raw.ReloadInterval.or(certs.DefaultReloadInterval),
		CloseOnExpiry:  raw.CloseOnExpiry == nil || *raw.CloseOnExpiry,
		Link: transport.LinkOptions{
			DialTimeout:      raw.DialTimeout.or(0),
			HandshakeTimeout: raw.HandshakeTimeout.or(0),
			PeerTimeout:      raw.PeerTimeout.or(0),
		}.WithDefaults(),
		IdleTimeout:      raw.IdleTimeout.or(0),
		HalfCloseTimeout: raw.HalfCloseTimeout.or(DefaultHalfCloseTimeout),
		ProbeInterval:    probeInterval(raw.ProbeInterval),
		DrainTimeout:     raw.DrainTimeout.or(DefaultDrainTimeout),
		AllowNonLoopback: raw.AllowNonLoopback,
		Warnings:         ps.warnings(),
	}
	if admin.path != "" {
		p.Admin = admin.addr.String()
	}
	if transparent {
		fillCapture(p, me, members, raw)
	} else {
		fillRoutes(p, me, members)
	}
	fillACMENames(p.Channels, me.identity)
	fillSPIFFEIDs(p.Channels, me.identity)
	return p, nil
}

// probeInterval is probe_interval with its default; an explicit 0 stays 0.
func probeInterval(d *duration) time.Duration {
	if d == nil {
		return DefaultProbeInterval
	}
	return d.or(0)
}

// allowedUIDs is member's allowed_uids, else the top-level one; nil when
// neither is set. Both lists are checked: not empty, no negative uid.
func allowedUIDs(raw *fileConfig, member string, ps *problems) []int {
	checkUIDs("allowed_uids", raw.AllowedUIDs, ps)
	m := raw.Members[member].AllowedUIDs
	checkUIDs("members."+member+".allowed_uids", m, ps)
	if m != nil {
		return m
	}
	return raw.AllowedUIDs
}

// checkUIDs checks one allowed_uids list at path.
func checkUIDs(path string, uids []int, ps *problems) {
	if uids != nil && len(uids) == 0 {
		ps.add(path, "empty: no local process could use the sidecar (leave it out to allow every local user)")
	}
	for i, u := range uids {
		if u < 0 {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "uid %d is negative", u)
		}
	}
}

// fillACMENames gives every ACME channel whose names were not set the
// member's identity as its certificate name, so the plan carries the
// whole ACME configuration.
func fillACMENames(channels []ChannelPlan, identity string) {
	for i := range channels {
		if a := channels[i].ACME; a != nil && a.Name == "" {
			named := *a
			named.Name = identity
			channels[i].ACME = &named
		}
	}
}

// resolveMembers expands and parses every member, sorted by name.
func resolveMembers(raw *fileConfig, x expander) []member {
	var out []member
	for _, name := range sortedKeys(raw.Members) {
		path := "members." + name
		m := member{name: name, cfg: x.member(path, raw.Members[name])}
		if !x.failed[path+".address"] {
			host, port, err := peerAddress(m.cfg.Address)
			if err != nil {
				x.ps.add(path+".address", "%v", err)
			}
			m.host, m.port = host, port
		}
		m.identity = m.cfg.Identity
		if m.identity == "" && !x.failed[path+".identity"] {
			m.identity = m.host
		}
		checkIdentity(path+".identity", m.identity, x.ps)
		if !x.failed[path+".local_ip"] {
			ip, err := localIP(m.cfg.LocalIP, raw.AllowNonLoopback)
			if err != nil {
				x.ps.add(path+".local_ip", "%v", err)
			}
			m.ip = ip
		}
		out = append(out, m)
	}
	return out
}

// checkUnique refuses two members with one address or one identity: a peer
// could not be told apart from another.
func checkUnique(members []member, ps *problems) {
	addrs := make(map[string]string)
	idents := make(map[string]string)
	for _, m := range members {
		if m.host != "" {
			key := strings.ToLower(net.JoinHostPort(m.host, strconv.Itoa(m.port)))
			if other, ok := addrs[key]; ok {
				ps.add("members."+m.name+".address", "%s already used by %s", m.cfg.Address, other)
			} else {
				addrs[key] = m.name
			}
		}
		if m.identity != "" {
			key := strings.ToLower(strings.TrimSuffix(m.identity, "."))
			if other, ok := idents[key]; ok {
				ps.add("members."+m.name+".identity", "identity %q already used by %s (set identity to tell them apart)", m.identity, other)
			} else {
				idents[key] = m.name
			}
		}
	}
}

// checkPortConflicts refuses a port used twice on one local_ip, by two
// members or by two channels of one member. Members on different local_ips
// may reuse ports.
func checkPortConflicts(members []member, ps *problems) {
	type owner struct{ member, channel string }
	used := make(map[netip.AddrPort]owner)
	for _, m := range members {
		if !m.ip.IsValid() {
			continue
		}
		for _, ch := range sortedKeys(m.cfg.Ports) {
			port := m.cfg.Ports[ch]
			key := netip.AddrPortFrom(m.ip, uint16(port))
			prev, ok := used[key]
			switch {
			case !ok:
				used[key] = owner{m.name, ch}
			case prev.member == m.name:
				ps.add("members."+m.name+".ports."+ch, "port %d already used by channel %s", port, prev.channel)
			default:
				ps.add("members."+m.name+".ports."+ch, "port %d already used by %s", port, prev.member)
			}
		}
	}
}

// listener is a planned listen address with the key path it came from; path
// is "" when there is no listener.
type listener struct {
	addr bindAddr
	path string
}

// planListeners evaluates the member's inbound listen address (default: all
// interfaces at the port of its address) and its admin address.
func planListeners(me member, raw *fileConfig, x expander) (listen, admin listener) {
	path := "members." + me.name
	switch {
	case x.failed[path+".listen"]:
	case me.cfg.Listen == "":
		if me.port != 0 {
			listen = listener{addr: bindAddr{Port: me.port}, path: path + ".address"}
		}
	default:
		a, err := listenAddr(me.cfg.Listen)
		if err != nil {
			x.ps.add(path+".listen", "%v", err)
		} else {
			listen = listener{addr: a, path: path + ".listen"}
		}
	}
	adminPath, adminStr := "admin", x.expand("admin", raw.Admin)
	if me.cfg.Admin != nil {
		adminPath, adminStr = path+".admin", *me.cfg.Admin
	}
	if adminStr != "" && !x.failed[adminPath] {
		a, err := listenAddr(adminStr)
		if err != nil {
			x.ps.add(adminPath, "%v", err)
		} else {
			admin = listener{addr: a, path: adminPath}
		}
	}
	return listen, admin
}

// fillRoutes fills the plan's outbound routes, deliveries and member list.
func fillRoutes(p *Plan, me member, members []member) {
	for _, ch := range p.Channels {
		p.Inbound = append(p.Inbound, Delivery{
			Channel: ch.Name,
			Target:  netip.AddrPortFrom(me.ip, uint16(me.cfg.Ports[ch.Name])).String(),
		})
	}
	type keyed struct {
		key netip.AddrPort
		r   Route
	}
	var routes []keyed
	for _, peer := range members {
		p.Members = append(p.Members, MemberInfo{Name: peer.name, Address: peer.cfg.Address, Identity: peer.identity})
		if peer.name == me.name {
			continue
		}
		for _, ch := range p.Channels {
			listen := netip.AddrPortFrom(me.ip, uint16(peer.cfg.Ports[ch.Name]))
			routes = append(routes, keyed{listen, Route{
				Listen:       listen.String(),
				Channel:      ch.Name,
				Peer:         peer.name,
				PeerAddress:  peer.cfg.Address,
				PeerIdentity: peer.identity,
			}})
		}
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].key.Compare(routes[j].key) < 0 })
	for _, r := range routes {
		p.Outbound = append(p.Outbound, r.r)
	}
}

// capturePort is capture_port with its default.
func (raw *fileConfig) capturePort() int {
	if raw.CapturePort == 0 {
		return DefaultCapturePort
	}
	return raw.CapturePort
}

// checkCapturePorts checks drop-in mode's ports, where members may (and
// usually do) use the same ones: within a member, every channel port, the
// link port and the capture port must differ, or the rules would capture
// the sidecar's own listeners.
func checkCapturePorts(members []member, capturePort int, ps *problems) {
	for _, m := range members {
		if m.port == capturePort {
			ps.add("members."+m.name+".address", "link port %d is capture_port too", m.port)
		}
		used := map[int]string{m.port: "the link port (address)", capturePort: "capture_port"}
		for _, ch := range sortedKeys(m.cfg.Ports) {
			port := m.cfg.Ports[ch]
			if other, ok := used[port]; ok {
				ps.add("members."+m.name+".ports."+ch, "port %d already used by %s", port, other)
				continue
			}
			used[port] = "channel " + ch
		}
	}
}

// fillCapture fills a drop-in mode plan: inbound links are delivered to
// the member's own address, and its connections to every peer's address
// on a channel port are captured and tunnelled to that peer.
func fillCapture(p *Plan, me member, members []member, raw *fileConfig) {
	c := &CapturePlan{Rules: raw.CaptureRules, Port: raw.capturePort(), Mark: CaptureMark}
	if c.Rules == "" {
		c.Rules = CaptureRulesManaged
	}
	for _, ch := range p.Channels {
		port := me.cfg.Ports[ch.Name]
		p.Inbound = append(p.Inbound, Delivery{Channel: ch.Name, Target: net.JoinHostPort(me.host, strconv.Itoa(port))})
		c.Guarded = append(c.Guarded, port)
		if ch.OnboardingOpen() {
			c.Open = append(c.Open, port)
		}
	}
	slices.Sort(c.Guarded)
	slices.Sort(c.Open)
	c.Open = slices.Compact(c.Open)
	for _, peer := range members {
		p.Members = append(p.Members, MemberInfo{Name: peer.name, Address: peer.cfg.Address, Identity: peer.identity})
		if peer.name == me.name {
			continue
		}
		for _, ch := range p.Channels {
			port := peer.cfg.Ports[ch.Name]
			c.Targets = append(c.Targets, CaptureTarget{Member: peer.name, Channel: ch.Name, Host: peer.host, Port: port, Open: ch.OnboardingOpen()})
			r := Route{Channel: ch.Name, Peer: peer.name, PeerAddress: peer.cfg.Address, PeerIdentity: peer.identity}
			if ch.OnboardingOpen() {
				r.Direct = net.JoinHostPort(peer.host, strconv.Itoa(port))
			}
			p.Outbound = append(p.Outbound, r)
		}
	}
	p.Capture = c
	p.Link.Mark = c.Mark
}
