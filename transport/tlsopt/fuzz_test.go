package tlsopt

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// The option values of a cluster file reach these parsers as written.
// They must never panic, and what they accept must make sense to
// crypto/tls.

func FuzzResolveCipherList(f *testing.F) {
	for _, s := range []string{"HIGH", "ECDHE+AESGCM:!aNULL", "DEFAULT:@STRENGTH", "AES128-SHA:-ALL:+ECDHE", "3DES", "!", "HIGH:@SECLEVEL=2"} {
		f.Add(s)
	}
	known := map[uint16]bool{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		known[cs.ID] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ResolveCipherList(s)
		if err != nil {
			return
		}
		if len(sel.Suites) == 0 && strings.TrimSpace(s) != "" {
			t.Fatalf("%q: accepted with no suite", s)
		}
		for _, id := range sel.Suites {
			if !known[id] {
				t.Fatalf("%q: selected suite %#04x, which Go does not implement", s, id)
			}
		}
	})
}

func FuzzParseTLS13Ciphersuites(f *testing.F) {
	for _, s := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		suites, err := ParseTLS13Ciphersuites(s)
		if err != nil {
			return
		}
		for _, id := range suites {
			if !slices.Contains(tls13Suites[:], id) {
				t.Fatalf("%q: %#04x is not a TLS 1.3 suite Go implements", s, id)
			}
		}
	})
}

func FuzzParseTLSVersion(f *testing.F) {
	for _, s := range []string{"TLSv1.2,TLSv1.3", "TLSv1.3", "TLSv1,TLSv1.3", "tlsv1.2 , TLSv1.3", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, err := ParseTLSVersion(s)
		if err != nil || lo == 0 && hi == 0 { // unset: Go's defaults
			return
		}
		if lo > hi || lo < tls.VersionTLS12 || hi > tls.VersionTLS13 {
			t.Fatalf("%q: range %#x..%#x", s, lo, hi)
		}
	})
}

func FuzzParseKeyExchange(f *testing.F) {
	for _, s := range []string{"X25519MLKEM768:X25519", "prime256v1", "secp384r1, secp521r1", "ffdhe2048", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := ParseKeyExchange(s)
		if err != nil {
			return
		}
		for _, id := range ids {
			if _, ok := keyExchangeID(KeyExchangeName(id)); !ok {
				t.Fatalf("%q: group %v is not one this package knows", s, id)
			}
		}
	})
}
