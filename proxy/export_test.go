package proxy

import (
	"maps"

	"github.com/groupwire/groupwire/certs"
)

// ConnectionsHeld is connectionsHeld, for the external tests.
var ConnectionsHeld = (*Sidecar).connectionsHeld

// Stores returns a copy of the current credential store of each TLS
// channel, for the external tests.
func Stores(s *Sidecar) map[string]*certs.Store { return maps.Clone(s.current().stores) }
