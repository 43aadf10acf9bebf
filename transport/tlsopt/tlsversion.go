package tlsopt

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// tlsVersions are MySQL's tls_version names, oldest first.
var tlsVersions = [...]struct {
	name    string
	version uint16
	secure  bool
}{
	{"TLSv1", tls.VersionTLS10, false},
	{"TLSv1.1", tls.VersionTLS11, false},
	{"TLSv1.2", tls.VersionTLS12, true},
	{"TLSv1.3", tls.VersionTLS13, true},
}

// ParseTLSVersion parses MySQL's tls_version list ("TLSv1.2,TLSv1.3"):
// names separated by commas and/or spaces, case-insensitive, duplicates
// allowed. It returns the lowest and highest version for tls.Config. An
// empty string gives 0, 0 and no error, meaning the defaults (TLS 1.2 to
// 1.3). TLSv1 and TLSv1.1 are refused as insecure, and a list with a gap
// is refused because Go can only enable a contiguous range.
func ParseTLSVersion(s string) (min, max uint16, err error) {
	if strings.TrimSpace(s) == "" {
		return 0, 0, nil
	}
	tokens := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(tokens) == 0 {
		return 0, 0, fmt.Errorf("tls_version %q names no version (want TLSv1.2 and/or TLSv1.3)", s)
	}
	var seen [len(tlsVersions)]bool
	var unknown []string
	for _, t := range tokens {
		i := tlsVersionIndex(t)
		if i < 0 {
			unknown = append(unknown, fmt.Sprintf("%q", t))
			continue
		}
		seen[i] = true
	}
	if len(unknown) > 0 {
		return 0, 0, fmt.Errorf("tls_version: unknown version %s (want TLSv1.2 and/or TLSv1.3)", strings.Join(unknown, ", "))
	}
	lo, hi := -1, -1
	var insecure, missing []string
	for i, ok := range seen {
		if !ok {
			continue
		}
		if lo < 0 {
			lo = i
		}
		hi = i
		if !tlsVersions[i].secure {
			insecure = append(insecure, tlsVersions[i].name)
		}
	}
	for i := lo; i <= hi; i++ {
		if !seen[i] {
			missing = append(missing, tlsVersions[i].name)
		}
	}
	var msgs []string
	if len(insecure) > 0 {
		verb := "is"
		if len(insecure) > 1 {
			verb = "are"
		}
		msgs = append(msgs, fmt.Sprintf("%s %s not supported (insecure); use TLSv1.2 and/or TLSv1.3", strings.Join(insecure, " and "), verb))
	}
	if len(missing) > 0 {
		msgs = append(msgs, fmt.Sprintf("%q leaves out %s; Go can only enable a contiguous range of versions",
			s, strings.Join(missing, " and ")))
	}
	if len(msgs) > 0 {
		return 0, 0, fmt.Errorf("tls_version: %s", strings.Join(msgs, "; "))
	}
	return tlsVersions[lo].version, tlsVersions[hi].version, nil
}

// tlsVersionIndex returns the index of a tls_version name, or -1.
func tlsVersionIndex(name string) int {
	for i, v := range tlsVersions {
		if strings.EqualFold(name, v.name) {
			return i
		}
	}
	return -1
}
