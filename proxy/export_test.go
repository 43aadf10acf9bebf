package proxy

// ConnectionsHeld is connectionsHeld, for the external tests.
var ConnectionsHeld = (*Sidecar).connectionsHeld
