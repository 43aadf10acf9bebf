package transport

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"testing"
)

// TestNameMatches pins the VERIFY_IDENTITY name check that both the links
// and `groupwire check` use.
func TestNameMatches(t *testing.T) {
	cert := func(cn string, dns []string, ips ...string) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
		for _, ip := range ips {
			c.IPAddresses = append(c.IPAddresses, net.ParseIP(ip))
		}
		return c
	}
	tests := []struct {
		cert *x509.Certificate
		name string
		want bool
	}{
		{cert("x", []string{"mysql-1.db"}), "mysql-1.db", true},
		{cert("x", []string{"MySQL-1.DB."}), "mysql-1.db", true},
		{cert("x", []string{"mysql-1.db"}), "MYSQL-1.db.", true},
		{cert("x", []string{"mysql-1.db"}), "mysql-2.db", false},
		{cert("x", []string{"*.db.internal"}), "mysql-1.db.internal", true},
		{cert("x", []string{"*.db.internal"}), "a.b.db.internal", false}, // one label only
		{cert("x", []string{"*.db.internal"}), "db.internal", false},
		{cert("x", []string{"*.db.internal"}), ".db.internal", false},
		{cert("x", []string{"*.internal"}), "db.internal", false}, // needs two labels after *
		{cert("x", []string{"my*.db.internal"}), "mysql.db.internal", false},
		{cert("mysql-1", nil), "mysql-1", true},                   // CN without DNS SAN
		{cert("mysql-1", []string{"other"}), "mysql-1", false},    // CN ignored once a DNS SAN exists
		{cert("mysql-1", nil, "10.0.0.1"), "mysql-1", true},       // IP SANs do not hide the CN
		{cert("x", nil, "10.0.0.1"), "10.0.0.1", true},            // IP SAN
		{cert("10.0.0.1", nil), "10.0.0.1", false},                // never an IP from the CN
		{cert("x", []string{"10.0.0.1"}), "10.0.0.1", false},      // nor from a DNS SAN
		{cert("x", nil, "::ffff:10.0.0.1"), "10.0.0.1", true},     // mapped forms are one address
		{cert("x", nil, "fd00::2"), "[fd00::2]", true},            // bracketed IPv6
		{cert("x", []string{"*.db.internal"}), "10.0.0.1", false}, // wildcards do not match IPs
		{cert("", nil), "", false},
		{nil, "mysql-1", false},
	}
	svid := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: "spiffe://td/a"}, DNSNames: []string{"spiffe://td/a"}}
		for _, u := range uris {
			p, _ := url.Parse(u)
			c.URIs = append(c.URIs, p)
		}
		return c
	}
	tests = append(tests, []struct {
		cert *x509.Certificate
		name string
		want bool
	}{
		{svid("spiffe://td/galera/node-1"), "spiffe://td/galera/node-1", true},
		{svid("spiffe://td/galera/node-2"), "spiffe://td/galera/node-1", false},
		{svid("spiffe://td/galera/node-1/x"), "spiffe://td/galera/node-1", false},
		{svid("spiffe://other/galera/node-1"), "spiffe://td/galera/node-1", false},
		{svid("spiffe://td/a", "spiffe://td/b"), "spiffe://td/a", false}, // an SVID has exactly one URI SAN
		{svid(), "spiffe://td/a", false},                                 // neither the CN nor a DNS SAN counts
	}...)
	for _, tc := range tests {
		if got := NameMatches(tc.cert, tc.name); got != tc.want {
			t.Errorf("NameMatches(%s, %q) = %v, want %v", certName(tc.cert), tc.name, got, tc.want)
		}
	}
}
