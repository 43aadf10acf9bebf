package proxy

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupwire/groupwire/transport"
)

// Direction says which side dialed a link.
type Direction string

// Link directions.
const (
	Outbound Direction = "out" // this member's service dialed a peer through us
	Inbound  Direction = "in"  // a peer's sidecar dialed us
)

// liveLink is one link in flight: the member's connection, the link to the
// peer's sidecar, and how it ends.
type liveLink struct {
	id        uint64
	peer      string
	channel   string
	mode      transport.Mode // the ssl_mode the link runs at
	direction Direction
	started   time.Time
	link      *transport.Link
	member    *net.TCPConn
	release   func() // gives back the link's place under max_links_per_peer

	reason atomic.Pointer[string] // why the link was cut; the first kill wins
	// halfClosed is when one direction ended cleanly (Unix nanoseconds), 0
	// while both run: half_close_timeout counts from then.
	halfClosed atomic.Int64
}

// halfClose notes that one direction ended cleanly; the first call wins.
func (l *liveLink) halfClose() { l.halfClosed.CompareAndSwap(0, time.Now().UnixNano()) }

// halfClosedSince is when one direction ended cleanly, or the zero time.
func (l *liveLink) halfClosedSince() time.Time {
	if n := l.halfClosed.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// kill ends the link; the first reason given is the one logged. It
// reports whether this call was the first. With a reason the link was cut
// short (a failure, a refusal, a cut by the sidecar), so it is aborted on
// both sides: the member's socket is reset and the peer's link reset with
// no close_notify, and neither member can take the stream for complete.
// Without one, both directions ended cleanly and are closed.
func (l *liveLink) kill(reason string) bool {
	first := l.reason.CompareAndSwap(nil, &reason)
	if reason == "" {
		l.link.Close()
		l.member.Close()
		return first
	}
	_ = l.member.SetLinger(0)
	l.member.Close()
	l.link.Abort()
	return first
}

// killReason returns why the link was cut, or "" if it was not.
func (l *liveLink) killReason() string {
	if r := l.reason.Load(); r != nil {
		return *r
	}
	return ""
}

// LinkInfo describes a live link for the status page and tests.
type LinkInfo struct {
	ID        uint64    `json:"id"`
	Peer      string    `json:"peer"`
	Channel   string    `json:"channel"`
	Direction Direction `json:"direction"`
	Mode      string    `json:"mode"` // the ssl_mode the link runs at
	Started   time.Time `json:"started"`
	// PeerSerial is the serial number (hex) of the certificate the peer
	// presented, "" under DISABLED or when it presented none.
	PeerSerial string `json:"peer_serial,omitempty"`
}

// registry tracks the live links of one sidecar.
type registry struct {
	mu     sync.Mutex
	nextID uint64
	links  map[uint64]*liveLink // guarded by mu
	closed bool                 // guarded by mu; no link is added once set
}

func newRegistry() *registry { return &registry{links: make(map[uint64]*liveLink)} }

// add registers l; it reports false once the registry is closed.
func (r *registry) add(l *liveLink) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.nextID++
	l.id = r.nextID
	r.links[l.id] = l
	return true
}

// close refuses further links and returns those still registered.
func (r *registry) close() []*liveLink {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return r.all()
}

func (r *registry) remove(l *liveLink) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.links, l.id)
}

// all returns the live links, oldest first.
func (r *registry) all() []*liveLink {
	r.mu.Lock()
	out := make([]*liveLink, 0, len(r.links))
	for _, l := range r.links {
		out = append(out, l)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.links)
}
