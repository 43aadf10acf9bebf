package cluster

import (
	"net/url"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/transport"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// SPIFFEOptions are the keys of a `tls.spiffe` (or
// `channels.NAME.tls.spiffe`) block: the member's certificate and the CAs
// its peers must chain to come from the SPIFFE Workload API (an
// X.509-SVID and its trust domain's bundle) instead of ssl_cert, ssl_key,
// ssl_ca and ssl_capath.
type SPIFFEOptions struct {
	Socket string `yaml:"socket"` // unix:///run/spire/agent.sock, or tcp://IP:PORT
}

// spiffe expands the socket of a spiffe block; nil stays nil.
func (x expander) spiffe(path string, o *SPIFFEOptions) *SPIFFEOptions {
	if o == nil {
		return nil
	}
	return &SPIFFEOptions{Socket: x.expand(path+".socket", o.Socket)}
}

// planSPIFFE works out the channel's effective spiffe block, records
// problems at their key paths, clears the file keys it replaces (when
// inherited from the top-level block), and returns the configuration, nil
// when the channel uses files or ACME. The nearer block wins, as with
// acme: a channel that sets ssl_cert/ssl_key or acme itself does not take
// the top-level spiffe. Its ID is filled in by Plan: the member's identity
// when that is a SPIFFE ID.
func planSPIFFE(channel string, top, ch TLSOptions, eff *TLSOptions, from map[string]string, ps *problems) *certs.SPIFFEConfig {
	o, block := ch.SPIFFE, "channels."+channel+".tls"
	if o == nil && ch.ACME == nil && !hasFiles(ch) {
		o, block = top.SPIFFE, "tls"
	}
	eff.SPIFFE = o
	if o == nil {
		return nil
	}
	for _, key := range []string{"ssl_cert", "ssl_key", "ssl_ca", "ssl_capath", "ssl_crl", "ssl_crlpath"} {
		v := fieldOf(eff, key)
		if *v != "" && from[key] == block+"."+key {
			ps.add(block+".spiffe", "set together with %s; the Workload API supplies the certificate, its key and the trust bundle, so leave the file keys unset (for CRLs, ssl_crl_fetch)", from[key])
		}
		*v = ""
	}
	if (block == "tls" && top.ACME != nil) || (block != "tls" && ch.ACME != nil) {
		ps.add(block+".spiffe", "set together with acme; a channel's certificate comes from one of them")
	}
	if u, err := url.Parse(o.Socket); err != nil || (u.Scheme != "unix" && u.Scheme != "tcp") {
		ps.add(block+".spiffe.socket", "%q is not a Workload API address (unix:///run/spire/agent.sock or tcp://IP:PORT)", o.Socket)
	}
	return &certs.SPIFFEConfig{Socket: o.Socket}
}

// fieldOf returns the string field of a TLS block named key.
func fieldOf(o *TLSOptions, key string) *string {
	for _, f := range tlsFields {
		if f.key == key {
			return f.get(o)
		}
	}
	panic("cluster: no TLS key " + key)
}

// checkIdentity checks a member's identity written as a SPIFFE ID.
func checkIdentity(path, identity string, ps *problems) {
	if !transport.IsSPIFFEID(identity) {
		return
	}
	if _, err := spiffeid.FromString(identity); err != nil {
		ps.add(path, "%q is not a valid SPIFFE ID: %v", identity, err)
	}
}

// fillSPIFFEIDs gives every SPIFFE channel the member's identity as the
// SVID's SPIFFE ID when that identity is one.
func fillSPIFFEIDs(channels []ChannelPlan, identity string) {
	if !transport.IsSPIFFEID(identity) {
		return
	}
	for i := range channels {
		if s := channels[i].SPIFFE; s != nil {
			withID := *s
			withID.ID = identity
			channels[i].SPIFFE = &withID
		}
	}
}
