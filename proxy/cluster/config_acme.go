package cluster

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/groupwire/groupwire/certs"
)

// ACMEOptions are the keys of a `tls.acme` (or `channels.NAME.tls.acme`)
// block: the member's certificate and key come from an ACME CA (through
// certmagic) instead of ssl_cert/ssl_key. ssl_ca still says which CA
// peers' certificates must chain to. Unset keys of a channel's block are
// inherited from the top-level block.
type ACMEOptions struct {
	Directory          string    `yaml:"directory"`            // ACME directory URL (https)
	CARoot             string    `yaml:"ca_root"`              // PEM trusted for the directory's TLS; default system roots
	Email              string    `yaml:"email"`                // ACME account contact (required)
	Names              []string  `yaml:"names"`                // the certificate's name; default the member's identity
	Storage            string    `yaml:"storage"`              // folder for account, keys and certificates
	RenewCheckInterval *duration `yaml:"renew_check_interval"` // default lifetime/20 within 1s-10m
	Profile            string    `yaml:"profile"`              // ACME profile; default the CA's choice
	HTTPListen         string    `yaml:"http_listen"`          // HTTP-01 challenge listener; default ":80"
}

// acmeFields lists the string keys of an acme block.
var acmeFields = []struct {
	key string
	get func(*ACMEOptions) *string
}{
	{"directory", func(o *ACMEOptions) *string { return &o.Directory }},
	{"ca_root", func(o *ACMEOptions) *string { return &o.CARoot }},
	{"email", func(o *ACMEOptions) *string { return &o.Email }},
	{"storage", func(o *ACMEOptions) *string { return &o.Storage }},
	{"profile", func(o *ACMEOptions) *string { return &o.Profile }},
	{"http_listen", func(o *ACMEOptions) *string { return &o.HTTPListen }},
}

// acme expands every string of an acme block; nil stays nil.
func (x expander) acme(path string, o *ACMEOptions) *ACMEOptions {
	if o == nil {
		return nil
	}
	out := &ACMEOptions{RenewCheckInterval: o.RenewCheckInterval}
	for _, f := range acmeFields {
		*f.get(out) = x.expand(path+"."+f.key, *f.get(o))
	}
	for i, n := range o.Names {
		out.Names = append(out.Names, x.expand(fmt.Sprintf("%s.names[%d]", path, i), n))
	}
	return out
}

// validateACMEStructure checks the acme blocks' durations.
func validateACMEStructure(raw *fileConfig, ps *problems) {
	check := func(path string, o *ACMEOptions) {
		if o != nil && o.RenewCheckInterval != nil && *o.RenewCheckInterval <= 0 {
			ps.add(path+".renew_check_interval", "must be positive, got %s (leave it out to derive it from the certificate's lifetime)", o.RenewCheckInterval.or(0))
		}
	}
	check("tls.acme", raw.TLS.ACME)
	for _, name := range sortedKeys(raw.Channels) {
		check("channels."+name+".tls.acme", raw.Channels[name].TLS.ACME)
	}
}

// hasFiles reports whether a TLS block sets ssl_cert or ssl_key.
func hasFiles(o TLSOptions) bool { return o.SSLCert != "" || o.SSLKey != "" }

// usesACME reports whether a channel's certificate comes from ACME: the
// nearer block decides, so a channel that sets ssl_cert/ssl_key itself
// uses files even when tls.acme is set, and one that sets acme uses ACME
// even when tls sets ssl_cert/ssl_key.
func usesACME(top, ch TLSOptions) bool {
	return ch.ACME != nil || (!hasFiles(ch) && top.ACME != nil)
}

// planACME works out the channel's effective acme block (nil when the
// certificate comes from files), records problems at their key paths,
// clears the inherited ssl_cert/ssl_key from eff when ACME is used, and
// returns the parsed configuration. Its Name is empty when names is not
// set: Plan fills in the member's identity once the members are known.
func planACME(channel string, top, ch TLSOptions, eff *TLSOptions, dir string, failed map[string]bool, ps *problems) *certs.ACMEConfig {
	chPath := "channels." + channel + ".tls"
	switch {
	case ch.ACME != nil && hasFiles(ch):
		ps.add(chPath+".acme", "set together with %s; ACME supplies the certificate and key, so leave ssl_cert and ssl_key unset", setKeys(chPath, ch))
	case ch.ACME == nil && !hasFiles(ch) && top.ACME != nil && hasFiles(top):
		ps.add("tls.acme", "set together with %s; ACME supplies the certificate and key, so leave ssl_cert and ssl_key unset", setKeys("tls", top))
	}
	if !usesACME(top, ch) {
		eff.ACME = nil
		return nil
	}
	eff.SSLCert, eff.SSLKey = "", ""
	o, from := mergeACME(channel, top.ACME, ch.ACME)
	eff.ACME = o
	broken := func(key string) bool {
		return failed["tls.acme."+key] || failed[chPath+".acme."+key]
	}
	checkACME(o, from, broken, ps)
	cfg := &certs.ACMEConfig{
		Directory: o.Directory,
		CARoot:    resolvePath(dir, o.CARoot),
		Email:     o.Email,
		Storage:   resolvePath(dir, o.Storage),
		Profile:   o.Profile,
		// The HTTP-01 listener must be reachable by the CA: empty binds
		// every interface at port 80 (certs.ACMEConfig.HTTPListen).
		HTTPListen:         o.HTTPListen,
		RenewCheckInterval: o.RenewCheckInterval.or(0),
	}
	if len(o.Names) > 0 {
		cfg.Name = o.Names[0]
	}
	return cfg
}

// setKeys names the ssl_cert/ssl_key keys a block sets, for an error.
func setKeys(path string, o TLSOptions) string {
	var keys []string
	if o.SSLCert != "" {
		keys = append(keys, path+".ssl_cert")
	}
	if o.SSLKey != "" {
		keys = append(keys, path+".ssl_key")
	}
	return strings.Join(keys, " and ")
}

// mergeACME fills every unset key of the channel's acme block from the
// top-level one. from maps each key to the path it was taken from, or, for
// a key set nowhere, to the path of the block in effect.
func mergeACME(channel string, top, ch *ACMEOptions) (*ACMEOptions, map[string]string) {
	chPath, topPath := "channels."+channel+".tls.acme.", "tls.acme."
	unsetPath := chPath
	if ch == nil {
		ch, unsetPath = &ACMEOptions{}, topPath
	}
	if top == nil {
		top = &ACMEOptions{}
	}
	out := &ACMEOptions{}
	from := make(map[string]string)
	pick := func(key string, chSet, topSet bool) bool {
		switch {
		case chSet:
			from[key] = chPath + key
			return true
		case topSet:
			from[key] = topPath + key
			return false
		}
		from[key] = unsetPath + key
		return true
	}
	for _, f := range acmeFields {
		if pick(f.key, *f.get(ch) != "", *f.get(top) != "") {
			*f.get(out) = *f.get(ch)
		} else {
			*f.get(out) = *f.get(top)
		}
	}
	if pick("names", len(ch.Names) > 0, len(top.Names) > 0) {
		out.Names = ch.Names
	} else {
		out.Names = top.Names
	}
	if pick("renew_check_interval", ch.RenewCheckInterval != nil, top.RenewCheckInterval != nil) {
		out.RenewCheckInterval = ch.RenewCheckInterval
	} else {
		out.RenewCheckInterval = top.RenewCheckInterval
	}
	return out, from
}

// checkACME checks an effective acme block, each problem at the path the
// key came from. Keys whose expansion failed are not checked again.
func checkACME(o *ACMEOptions, from map[string]string, broken func(string) bool, ps *problems) {
	if !broken("directory") {
		u, err := url.Parse(o.Directory)
		switch {
		case o.Directory == "":
			ps.add(from["directory"], "not set (the ACME directory URL of the CA, such as https://ca.internal:9000/acme/acme/directory)")
		case err != nil:
			ps.add(from["directory"], "%v", err)
		case u.Scheme != "https" || u.Host == "":
			ps.add(from["directory"], "%q is not an https:// URL (ACME runs over TLS)", o.Directory)
		}
	}
	if !broken("email") {
		switch {
		case o.Email == "":
			ps.add(from["email"], "not set (the ACME account's contact address; certmagic would ask for it on the terminal)")
		case !strings.Contains(o.Email, "@"):
			ps.add(from["email"], "%q is not an email address", o.Email)
		}
	}
	if o.Storage == "" && !broken("storage") {
		ps.add(from["storage"], "not set (a folder where the ACME account, keys and certificates are kept across restarts)")
	}
	if len(o.Names) > 1 {
		ps.add(from["names"], "%d names; certmagic obtains one certificate per name and a sidecar presents one, so give one (default: the member's identity)", len(o.Names))
	}
	for i, n := range o.Names {
		if strings.TrimSpace(n) == "" || strings.ContainsAny(n, " \t/:@") {
			if !broken(fmt.Sprintf("names[%d]", i)) {
				ps.add(fmt.Sprintf("%s[%d]", from["names"], i), "%q is not a DNS name or IP address", n)
			}
		}
	}
	if o.HTTPListen != "" && !broken("http_listen") {
		if _, p, err := net.SplitHostPort(o.HTTPListen); err != nil {
			ps.add(from["http_listen"], "%v", err)
		} else if port, err := strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			ps.add(from["http_listen"], "port %q is not a number in 1-65535", p)
		}
	}
}
