package transport

import (
	"crypto/x509"
	"net"
	"strings"
)

// NameMatches reports whether cert names name the way OpenSSL's host check
// does for MySQL's VERIFY_IDENTITY: an IP address must be an IP SAN; a DNS
// name must match a DNS SAN (a leading "*." wildcard covers one label), and
// the subject common name is consulted only when the certificate has no DNS
// SAN at all. A SPIFFE ID ("spiffe://...") must be the certificate's one
// URI SAN, exactly, as an X.509-SVID carries it; nothing else counts.
func NameMatches(cert *x509.Certificate, name string) bool {
	if cert == nil || name == "" {
		return false
	}
	if IsSPIFFEID(name) {
		return len(cert.URIs) == 1 && cert.URIs[0].String() == name
	}
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		for _, san := range cert.IPAddresses {
			if san.Equal(ip) {
				return true
			}
		}
		return false
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if len(cert.DNSNames) == 0 {
		return matchHostname(strings.ToLower(cert.Subject.CommonName), name)
	}
	for _, san := range cert.DNSNames {
		if matchHostname(strings.TrimSuffix(strings.ToLower(san), "."), name) {
			return true
		}
	}
	return false
}

// matchHostname matches a lower-case pattern against a lower-case host. A
// pattern may start with a "*." wildcard standing for exactly one non-empty
// label; like OpenSSL, a wildcard needs at least two labels after it.
func matchHostname(pattern, host string) bool {
	if pattern == "" || host == "" {
		return false
	}
	if pattern == host {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*.")
	if !ok || !strings.Contains(rest, ".") {
		return false
	}
	label, suffix, found := strings.Cut(host, ".")
	return found && label != "" && suffix == rest
}

// IsSPIFFEID reports whether an identity is written as a SPIFFE ID.
func IsSPIFFEID(name string) bool { return strings.HasPrefix(name, "spiffe://") }

// certName describes a certificate for log lines and refusals.
func certName(cert *x509.Certificate) string {
	if cert == nil {
		return "no certificate"
	}
	var names []string
	names = append(names, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	for _, u := range cert.URIs {
		names = append(names, u.String())
	}
	if len(names) == 0 {
		return "CN=" + cert.Subject.CommonName
	}
	return "CN=" + cert.Subject.CommonName + " (SAN " + strings.Join(names, ", ") + ")"
}

// parseHostIP reports whether host is an IP address literal.
func parseHostIP(host string) bool {
	return net.ParseIP(strings.Trim(host, "[]")) != nil
}
