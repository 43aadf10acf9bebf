package transport

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"strings"
	"testing"
)

// FuzzNameMatches checks the VERIFY_IDENTITY name rules on any SAN and any
// expected name: no panic, names are case-insensitive, a plain SAN equal
// to the name matches, and a wildcard never stands for more than one label.
func FuzzNameMatches(f *testing.F) {
	for _, s := range [][2]string{{"mysql-1", "mysql-1"}, {"*.db.internal", "mysql-1.db.internal"}, {"*.db.internal", "a.b.db.internal"},
		{"*.internal", "db.internal"}, {"MySQL-1.", "mysql-1"}, {"127.0.0.1", "127.0.0.1"}, {"", "x"}, {"*", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, san, name string) {
		cert := &x509.Certificate{DNSNames: []string{san}, Subject: pkix.Name{CommonName: "cn"}}
		got := NameMatches(cert, name)
		if net.ParseIP(strings.Trim(name, "[]")) != nil {
			return // IP names match IP SANs only, which this cert has none of
		}
		if upper := NameMatches(cert, strings.ToUpper(name)); upper != got && strings.ToLower(strings.ToUpper(name)) == strings.ToLower(name) {
			t.Fatalf("SAN %q: %q matches %v, upper-cased %v", san, name, got, upper)
		}
		if name != "" && name == san && !strings.Contains(san, "*") && !got {
			t.Fatalf("SAN %q does not match the same name", san)
		}
		if got && strings.HasPrefix(san, "*.") && strings.ToLower(strings.TrimSuffix(name, ".")) != strings.ToLower(strings.TrimSuffix(san, ".")) {
			host := strings.ToLower(strings.TrimSuffix(name, "."))
			rest := strings.ToLower(strings.TrimSuffix(san[2:], "."))
			if label, suffix, _ := strings.Cut(host, "."); suffix != rest || label == "" || strings.Contains(label, ".") {
				t.Fatalf("SAN %q matched %q across more than one label", san, name)
			}
		}
	})
}
