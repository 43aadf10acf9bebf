package tlsopt

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// keyExchanges maps OpenSSL's group names (as MySQL's tls_kex takes them,
// case-insensitively, with common aliases) to Go's identifiers.
var keyExchanges = []struct {
	names []string
	id    tls.CurveID
}{
	{[]string{"X25519MLKEM768"}, tls.X25519MLKEM768},
	{[]string{"SecP256r1MLKEM768"}, tls.SecP256r1MLKEM768},
	{[]string{"SecP384r1MLKEM1024"}, tls.SecP384r1MLKEM1024},
	{[]string{"X25519"}, tls.X25519},
	{[]string{"prime256v1", "secp256r1", "P-256"}, tls.CurveP256},
	{[]string{"secp384r1", "P-384"}, tls.CurveP384},
	{[]string{"secp521r1", "P-521"}, tls.CurveP521},
}

// ParseKeyExchange parses tls_kex, MySQL's colon-separated list of the TLS
// key exchange groups a connection may use (OpenSSL names such as
// X25519MLKEM768:X25519). An empty string means Go's default set, which
// prefers the hybrid post-quantum X25519MLKEM768. Go does not honour the
// order of the list, only which groups are in it.
func ParseKeyExchange(s string) ([]tls.CurveID, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ids []tls.CurveID
	for _, name := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		id, ok := keyExchangeID(name)
		if !ok {
			return nil, fmt.Errorf("tls_kex: unknown key exchange group %q (Go can do %s)", name, strings.Join(KeyExchangeNames(), ", "))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func keyExchangeID(name string) (tls.CurveID, bool) {
	for _, k := range keyExchanges {
		for _, n := range k.names {
			if strings.EqualFold(n, name) {
				return k.id, true
			}
		}
	}
	return 0, false
}

// KeyExchangeNames lists the tls_kex names Go can do.
func KeyExchangeNames() []string {
	var out []string
	for _, k := range keyExchanges {
		out = append(out, k.names[0])
	}
	return out
}

// KeyExchangeName gives a group's OpenSSL name.
func KeyExchangeName(id tls.CurveID) string {
	for _, k := range keyExchanges {
		if k.id == id {
			return k.names[0]
		}
	}
	return id.String()
}
