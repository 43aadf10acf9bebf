package cluster

import (
	"slices"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport"
)

// Plan is what one member's sidecar does, derived from the cluster file by
// Config.Plan. Every address in it is resolved (templates evaluated,
// defaults applied) and every TLS option parsed.
type Plan struct {
	Group    string
	Member   string        // the member this sidecar runs beside
	Listen   string        // inbound link listener, host:port
	LocalIP  string        // this member's loopback address
	Channels []ChannelPlan // sorted by name
	Outbound []Route       // one loopback listener per (peer, channel), sorted by Listen
	Inbound  []Delivery    // where inbound links of each channel are delivered, sorted by channel
	Members  []MemberInfo  // every member of the group, this one included, sorted by name

	ReloadInterval time.Duration // periodic certificate re-check (reload_interval, default 30s)
	CloseOnExpiry  bool          // cut links whose peer certificate expires (close_on_expiry, default true)
	Admin          string        // admin listener host:port, "" when off

	// Link holds dial_timeout (TCP dial to a peer), handshake_timeout (TLS
	// handshake plus HELLO/ACCEPT) and peer_timeout (a dead peer's links
	// are cut after this), defaults filled in.
	Link        transport.LinkOptions
	IdleTimeout time.Duration // cut links idle this long (idle_timeout); 0 means never
	// HalfCloseTimeout cuts a link one direction of which has ended when
	// nothing has moved the other way for this long (half_close_timeout,
	// default 60s); 0 means never.
	HalfCloseTimeout time.Duration
	// ProbeInterval is how often each peer is probed on each channel
	// (probe_interval, default 5s); 0 turns probes off.
	ProbeInterval time.Duration
	// DrainTimeout is how long a stopping sidecar lets live links finish
	// before it cuts them (drain_timeout, default 10s).
	DrainTimeout time.Duration
	Limits       Limits // the limits block, defaults filled in
	// AllowedUIDs are the users whose processes may use the outbound
	// (loopback) listeners (allowed_uids, the member's or the top-level
	// one); nil lets any local process, which then speaks to the peers as
	// this member.
	AllowedUIDs      []int
	AllowNonLoopback bool // local_ip may be a non-loopback address (allow_non_loopback)
	// Capture is drop-in mode's plan (capture: transparent); nil in
	// loopback mode.
	Capture *CapturePlan

	// Warnings are things worth saying at start: channels in REQUIRED or
	// DISABLED mode, ssl_cipher names Go cannot do.
	Warnings []Problem
}

// ChannelPlan is the effective TLS policy of one channel, after inheriting
// unset keys from the top-level tls block.
type ChannelPlan struct {
	Name string
	Mode transport.Mode // what this member dials with
	// AcceptModes are the modes accepted from peers during a rolling
	// ssl_mode change (accept_modes, which lists Mode too); nil means Mode
	// alone.
	AcceptModes []transport.Mode
	Source      certs.Source // files; empty when no mode of the channel runs TLS
	// Params are tls_version, ssl_cipher, tls_ciphersuites and tls_kex,
	// parsed; zero fields mean the defaults (transport.TLSParams).
	Params  transport.TLSParams
	Options TLSOptions // the effective options as written, for printing
	// ACME is where the member's certificate comes from when the channel
	// uses tls.acme (Source then names no ssl_cert/ssl_key); nil otherwise.
	// Its Name is filled in: the member's identity unless names sets it.
	ACME *certs.ACMEConfig
	// SPIFFE is where the member's certificate and the trust anchors come
	// from when the channel uses tls.spiffe (Source then names no ssl_cert,
	// ssl_key, ssl_ca or ssl_capath); nil otherwise. Its ID is the
	// member's identity when that is a SPIFFE ID.
	SPIFFE *certs.SPIFFEConfig

	DroppedCiphers []string // ssl_cipher names Go cannot do, left out of CipherSuites
}

// CapturePlan is what drop-in mode captures on this member's host: its
// connections to the peers' addresses on the channel ports go to the
// capture listener; other hosts' connections to its own channel ports are
// refused.
type CapturePlan struct {
	Rules   string          // CaptureRulesManaged or CaptureRulesExtern
	Port    int             // the capture listener's port on 127.0.0.1
	Mark    uint32          // the mark on the sidecar's own sockets, which the rules skip
	Targets []CaptureTarget // the peers' channel addresses, by member then channel
	Guarded []int           // this member's channel ports, sorted
	// Open are the Guarded ports whose channel's onboarding window is open
	// (OnboardingOpen): the group's member addresses may still reach them
	// directly in plaintext. Sorted; empty once every window is closed.
	Open []int
}

// CaptureTarget is one peer address the member dials on one channel.
type CaptureTarget struct {
	Member, Channel string
	Host            string // the host of the member's address: an IP, or a name resolved when the rules are made
	Port            int    // the channel's port on that member
	Open            bool   // the channel's onboarding window is open
}

// CaptureMark is the socket mark of the sidecar's own connections in
// drop-in mode ("GW"): the capture rules return on it, so nothing the
// sidecar dials is ever captured.
const CaptureMark uint32 = 0x4757

// Route is one outbound route to a peer on a channel: in loopback mode a
// listener on local_ip, in drop-in mode a target the capture maps to it.
type Route struct {
	Listen       string // local_ip:ports[channel] of the peer; "" in drop-in mode
	Channel      string
	Peer         string // peer member name
	PeerAddress  string // host:port of the peer's sidecar, resolved at each dial
	PeerIdentity string // the name the peer's certificate must carry
	// Direct is the peer member's own address for the channel (host:port),
	// dialled in plaintext when the peer's sidecar refuses the connection
	// (none there yet) while the channel's onboarding window is open; ""
	// otherwise, and always in loopback mode.
	Direct string
}

// Delivery says where inbound links of a channel go.
type Delivery struct {
	Channel string
	Target  string // local_ip:ports[channel] of this member
}

// MemberInfo is what every sidecar knows of one member.
type MemberInfo struct {
	Name     string
	Address  string
	Identity string
}

// MaterialMode is the strictest of the channel's modes, ssl_mode and
// accept_modes: what its key material must serve.
func (ch ChannelPlan) MaterialMode() transport.Mode {
	return transport.Strictest(append([]transport.Mode{ch.Mode}, ch.AcceptModes...))
}

// OnboardingOpen reports whether the channel tolerates members that have
// no sidecar yet: in drop-in mode, while its accept_modes lists DISABLED.
// Closing it is a reload without DISABLED. (ssl_mode: DISABLED alone, with
// no accept_modes, still runs every byte through the sidecars.)
func (ch ChannelPlan) OnboardingOpen() bool {
	return slices.Contains(ch.AcceptModes, transport.Disabled)
}
