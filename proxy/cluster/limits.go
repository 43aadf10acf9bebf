package cluster

import "fmt"

// Limits bound what connections that are not yet established links can
// hold, so that no one who can reach a port exhausts the sidecar's file
// descriptors or memory. A connection over a limit is closed at once,
// before any TLS work; established links are never touched. The defaults
// are far above what a real group opens.
type Limits struct {
	// MaxHandshakes bounds inbound connections not yet past HELLO, from
	// all sources together (max_handshakes).
	MaxHandshakes int
	// MaxHandshakesPerSource is the same bound per remote IP
	// (max_handshakes_per_source).
	MaxHandshakesPerSource int
	// MaxLinksPerPeer bounds established links per peer and channel, both
	// directions together (max_links_per_peer).
	MaxLinksPerPeer int
	// MaxLoopbackPending bounds connections from local processes that are
	// waiting for their link to a peer (max_loopback_pending).
	MaxLoopbackPending int
}

// defaultLimits are the limits of a file with no limits block.
var defaultLimits = Limits{MaxHandshakes: 256, MaxHandshakesPerSource: 64, MaxLinksPerPeer: 1024, MaxLoopbackPending: 256}

// limitsConfig is the `limits` block as written; unset keys take the
// defaults.
type limitsConfig struct {
	MaxHandshakes          *int `yaml:"max_handshakes"`
	MaxHandshakesPerSource *int `yaml:"max_handshakes_per_source"`
	MaxLinksPerPeer        *int `yaml:"max_links_per_peer"`
	MaxLoopbackPending     *int `yaml:"max_loopback_pending"`
}

// fields pairs each key of the limits block with its field in l.
func (l *Limits) fields() map[string]*int {
	return map[string]*int{
		"max_handshakes":            &l.MaxHandshakes,
		"max_handshakes_per_source": &l.MaxHandshakesPerSource,
		"max_links_per_peer":        &l.MaxLinksPerPeer,
		"max_loopback_pending":      &l.MaxLoopbackPending,
	}
}

// Value is the limit in force under its cluster-file key, such as
// "max_links_per_peer"; 0 for a key that is not a limit.
func (l Limits) Value(key string) int {
	if p := l.fields()[key]; p != nil {
		return *p
	}
	return 0
}

// resolve returns the limits with defaults filled in, and records a problem
// for every value that is not a positive number.
func (c *limitsConfig) resolve(ps *problems) Limits {
	l := defaultLimits
	if c == nil {
		return l
	}
	out := l.fields()
	for _, f := range []struct {
		key string
		v   *int
	}{
		{"max_handshakes", c.MaxHandshakes},
		{"max_handshakes_per_source", c.MaxHandshakesPerSource},
		{"max_links_per_peer", c.MaxLinksPerPeer},
		{"max_loopback_pending", c.MaxLoopbackPending},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < 1 {
			ps.add("limits."+f.key, "must be at least 1, got %d (leave it out for the default, %d)", *f.v, *out[f.key])
			continue
		}
		*out[f.key] = *f.v
	}
	if l.MaxHandshakesPerSource > l.MaxHandshakes {
		ps.warn("limits.max_handshakes_per_source", "%d is above max_handshakes (%d), so it never applies", l.MaxHandshakesPerSource, l.MaxHandshakes)
	}
	return l
}

// String renders the limits as `check` prints them.
func (l Limits) String() string {
	return fmt.Sprintf("handshakes %d (%d per source), links per peer and channel %d, loopback connections waiting for a link %d",
		l.MaxHandshakes, l.MaxHandshakesPerSource, l.MaxLinksPerPeer, l.MaxLoopbackPending)
}
