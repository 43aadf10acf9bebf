package tlsopt

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// The ten TLS 1.2 suites Go enables by default, in OpenSSL's order.
var goSecureNames = []string{
	"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
	"ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
}

// The seven insecure Go suites that OpenSSL calls HIGH (and DEFAULT).
var goInsecureHighNames = []string{
	"ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
	"AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES128-SHA256", "AES256-SHA", "AES128-SHA",
}

func suiteNames(ids []uint16) []string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = CipherSuiteName(id)
	}
	return names
}

func TestCipherTableCoversGo(t *testing.T) {
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, cs := range list {
			if !slices.ContainsFunc(opensslSuites[:], func(s opensslSuite) bool { return s.id == cs.ID }) {
				t.Errorf("Go suite %s (0x%04X) is missing from the OpenSSL table", cs.Name, cs.ID)
			}
		}
	}
	seen := map[string]string{}
	for _, s := range opensslSuites {
		for _, n := range []string{s.name, s.std} {
			if prev, ok := seen[strings.ToLower(n)]; ok && prev != s.name {
				t.Errorf("name %s of %s collides with %s", n, s.name, prev)
			}
			seen[strings.ToLower(n)] = s.name
		}
	}
	for _, a := range opensslAliases {
		if prev, ok := seen[strings.ToLower(a.name)]; ok {
			t.Errorf("alias %s collides with %s", a.name, prev)
		}
		seen[strings.ToLower(a.name)] = a.name
	}
}

func TestResolveCipherList(t *testing.T) {
	tests := []struct {
		in                 string
		suites             []string
		excluded, insecure []string
		dropped            int
	}{
		{in: "", suites: nil},
		{in: "ECDHE+AESGCM", suites: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{in: "ecdhe+aesgcm", suites: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"}},
		// NOTES §4: 71 suites, 17 of them Go's; the 7 insecure ones stay out.
		{in: "HIGH:!aNULL", suites: goSecureNames, excluded: goInsecureHighNames, dropped: 54},
		{in: "DEFAULT", suites: goSecureNames, excluded: goInsecureHighNames, dropped: 10},
		{in: "ECDHE+AESGCM:+aRSA", suites: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{in: "ECDHE+AESGCM:-ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384", suites: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"}},
		{in: "ECDHE+AESGCM:!AES256:AESGCM", suites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"}, excluded: []string{"AES128-GCM-SHA256"}, dropped: 3},
		{in: "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@STRENGTH", suites: []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{in: "ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-SHA;ECDHE-ECDSA-AES128-SHA ecdhe-ecdsa-chacha20-poly1305:@SECLEVEL=2", suites: []string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-CHACHA20-POLY1305"}},
		{in: "ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA384", suites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}, dropped: 2},
		{in: "kEECDH+CHACHA20:kRSA+AESGCM:AES128-SHA", suites: []string{"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", "AES128-SHA"}, excluded: []string{"AES256-GCM-SHA384", "AES128-GCM-SHA256"}, insecure: []string{"AES128-SHA"}},
		{in: "AES128-SHA", suites: []string{"AES128-SHA"}, insecure: []string{"AES128-SHA"}},
		{in: "ECDHE-RSA-DES-CBC3-SHA:ECDHE-RSA-AES128-GCM-SHA256", suites: []string{"ECDHE-RSA-DES-CBC3-SHA", "ECDHE-RSA-AES128-GCM-SHA256"}, insecure: []string{"ECDHE-RSA-DES-CBC3-SHA"}},
		// SHA256/SHA384 are MAC aliases: AEAD suites are in neither.
		{in: "aECDSA+SHA384:ECDSA+SHA256:EECDH+SHA1", suites: []string{"ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA"}, excluded: []string{"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-RC4-SHA", "ECDHE-RSA-RC4-SHA", "ECDHE-RSA-DES-CBC3-SHA"}, dropped: 5},
		{in: "ECDHE+AES256:-SHA:ECDHE+AES128+SHA", suites: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA"}, dropped: 4},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sel, err := ResolveCipherList(tt.in)
			if err != nil {
				t.Fatalf("ResolveCipherList(%q): %v", tt.in, err)
			}
			if got := suiteNames(sel.Suites); !slices.Equal(got, tt.suites) {
				t.Errorf("suites\n got %q\nwant %q", got, tt.suites)
			}
			if !slices.Equal(sel.Excluded, tt.excluded) {
				t.Errorf("excluded\n got %q\nwant %q", sel.Excluded, tt.excluded)
			}
			if !slices.Equal(sel.Insecure, tt.insecure) {
				t.Errorf("insecure\n got %q\nwant %q", sel.Insecure, tt.insecure)
			}
			if len(sel.Dropped) != tt.dropped {
				t.Errorf("dropped %d suites, want %d: %q", len(sel.Dropped), tt.dropped, sel.Dropped)
			}
		})
	}
}

func TestResolveCipherListErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string // substrings of the error
	}{
		{"DHE-RSA-AES256-SHA", []string{`ssl_cipher "DHE-RSA-AES256-SHA" leaves no cipher suite Go can use`, "Go does not implement DHE-RSA-AES256-SHA", "Go supports " + strings.Join(goSecureNames, ", ")}},
		{"DHE-RSA-AES128-GCM-SHA256:AES128-CCM:ECDHE-ECDSA-AES256-SHA384", []string{"Go does not implement DHE-RSA-AES128-GCM-SHA256, AES128-CCM, ECDHE-ECDSA-AES256-SHA384"}},
		{"3DES", []string{"insecure, used only when named: DES-CBC3-SHA, ECDHE-RSA-DES-CBC3-SHA"}},
		{"AES128-SHA:!AES128-SHA", []string{"leaves no cipher suite Go can use"}},
		{"FOO", []string{`ssl_cipher "FOO": unknown cipher or alias "FOO"`}},
		{"HIGH:ECDHE+FOO", []string{`unknown cipher or alias "FOO"`}},
		{"HIGH:DEFAULT", []string{"DEFAULT must be the first element"}},
		{"TLS_AES_128_GCM_SHA256", []string{"TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite: list it in tls_ciphersuites"}},
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", []string{"is an IANA name", "here ECDHE-RSA-AES128-GCM-SHA256"}},
		{"HIGH:@FOO", []string{`unknown command "@FOO"`}},
		{"HIGH:@SECLEVEL=9", []string{`unknown command "@SECLEVEL=9"`}},
		{"HIGH:!", []string{`"!" names nothing`}},
		{"ECDHE+", []string{"empty name in a '+' combination"}},
		{" : , ", []string{`ssl_cipher " : , " names no cipher`}},
		{"PSK-AES128-GCM-SHA256", []string{"Go does not implement PSK-AES128-GCM-SHA256"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ResolveCipherList(tt.in)
			if err == nil {
				t.Fatalf("ResolveCipherList(%q) succeeded, want an error", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestCipherSelectionWarnings(t *testing.T) {
	sel, err := ResolveCipherList("ECDHE+AESGCM:AES128-SHA:DHE-RSA-AES128-GCM-SHA256")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Go cannot do DHE-RSA-AES128-GCM-SHA256; left out",
		"enables insecure suites because it names them: AES128-SHA",
	}
	if w := sel.Warnings(); !slices.Equal(w, want) {
		t.Errorf("warnings\n got %q\nwant %q", w, want)
	}
	if w := (CipherSelection{Suites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}).Warnings(); w != nil {
		t.Errorf("a clean selection warns %q", w)
	}
}

func TestParseTLS13Ciphersuites(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "TLS_AES_128_GCM_SHA256", want: []uint16{tls.TLS_AES_128_GCM_SHA256}},
		{in: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:", want: []uint16{tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_AES_256_GCM_SHA384}},
		{in: " tls_aes_128_gcm_sha256 : TLS_AES_128_GCM_SHA256 ", want: []uint16{tls.TLS_AES_128_GCM_SHA256}},
		{in: "TLS_AES_128_CCM_SHA256", wantErr: "tls_ciphersuites: TLS_AES_128_CCM_SHA256 is not supported by Go (supported: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)"},
		{in: "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_8_SHA256", wantErr: "TLS_AES_128_CCM_8_SHA256 is not supported by Go"},
		{in: "TLS_AES_128_GCM_SHA512", wantErr: `unknown TLS 1.3 suite "TLS_AES_128_GCM_SHA512" (supported: `},
		{in: "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384", wantErr: "names are separated by ':'"},
		{in: "ECDHE-RSA-AES128-GCM-SHA256", wantErr: "ECDHE-RSA-AES128-GCM-SHA256 is a TLS 1.2 suite: list it in ssl_cipher"},
		{in: ":", wantErr: `tls_ciphersuites ":" names no suite`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTLS13Ciphersuites(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTLS13Ciphersuites(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseTLS13Ciphersuites(%q) = %x, %v; want %x", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCipherSuiteName(t *testing.T) {
	for id, want := range map[uint16]string{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
		tls.TLS_RSA_WITH_RC4_128_SHA:                "RC4-SHA",
		tls.TLS_AES_256_GCM_SHA384:                  "TLS_AES_256_GCM_SHA384",
		0x0039:                                      "DHE-RSA-AES256-SHA",
		0xFFFF:                                      tls.CipherSuiteName(0xFFFF),
	} {
		if got := CipherSuiteName(id); got != want {
			t.Errorf("CipherSuiteName(0x%04X) = %q, want %q", id, got, want)
		}
	}
}
