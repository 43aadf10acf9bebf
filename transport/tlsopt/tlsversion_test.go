package tlsopt

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestParseTLSVersion(t *testing.T) {
	tests := []struct {
		in       string
		min, max uint16
	}{
		{"", 0, 0},
		{"   ", 0, 0},
		{"TLSv1.2,TLSv1.3", tls.VersionTLS12, tls.VersionTLS13},
		{"TLSv1.3, TLSv1.2", tls.VersionTLS12, tls.VersionTLS13},
		{"tlsv1.2 tlsv1.3", tls.VersionTLS12, tls.VersionTLS13},
		{"TLSv1.2", tls.VersionTLS12, tls.VersionTLS12},
		{"TLSv1.3", tls.VersionTLS13, tls.VersionTLS13},
		{"TLSv1.3,TLSv1.3,,", tls.VersionTLS13, tls.VersionTLS13},
	}
	for _, tt := range tests {
		min, max, err := ParseTLSVersion(tt.in)
		if err != nil || min != tt.min || max != tt.max {
			t.Errorf("ParseTLSVersion(%q) = %#x, %#x, %v; want %#x, %#x", tt.in, min, max, err, tt.min, tt.max)
		}
	}
}

func TestParseTLSVersionErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TLSv1.1", "tls_version: TLSv1.1 is not supported (insecure); use TLSv1.2 and/or TLSv1.3"},
		{"TLSv1.1,TLSv1.2", "tls_version: TLSv1.1 is not supported (insecure); use TLSv1.2 and/or TLSv1.3"},
		{"TLSv1,TLSv1.1,TLSv1.2", "tls_version: TLSv1 and TLSv1.1 are not supported (insecure); use TLSv1.2 and/or TLSv1.3"},
		{"TLSv1.1,TLSv1.3", `tls_version: TLSv1.1 is not supported (insecure); use TLSv1.2 and/or TLSv1.3; "TLSv1.1,TLSv1.3" leaves out TLSv1.2; Go can only enable a contiguous range of versions`},
		{"TLSv1,TLSv1.3", `"TLSv1,TLSv1.3" leaves out TLSv1.1 and TLSv1.2`},
		{"TLSv1.4", `tls_version: unknown version "TLSv1.4" (want TLSv1.2 and/or TLSv1.3)`},
		{"TLSv1.2;TLSv1.3", `unknown version "TLSv1.2;TLSv1.3"`},
		{"SSLv3,TLSv1.0,TLSv1.2", `unknown version "SSLv3", "TLSv1.0"`},
		{" , ", `tls_version " , " names no version`},
	}
	for _, tt := range tests {
		_, _, err := ParseTLSVersion(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTLSVersion(%q) error = %v\nwant it to contain %q", tt.in, err, tt.want)
		}
	}
}
