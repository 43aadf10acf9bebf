// Package transport owns the link between two sidecars: the ssl_mode rule
// table and the TLS configurations and peer checks derived from it, the
// link protocol (HELLO, ACCEPT, REFUSE; see WIRE.md), the Dialer that opens
// a link to one peer, and the Acceptor that runs the whole inbound
// exchange. It moves no member bytes (package relay does) and reads no
// cluster file (package cluster does); key material comes from package
// certs.
package transport
