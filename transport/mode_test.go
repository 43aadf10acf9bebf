package transport

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
	}{
		{"DISABLED", Disabled},
		{"required", Required},
		{" Verify_CA\t", VerifyCA},
		{"VERIFY_IDENTITY", VerifyIdentity},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"FOO", "", "VERIFY-CA", "PREFERRED", "VERIFY_IDENTITY_X"} {
		_, err := ParseMode(bad)
		want := `unknown ssl_mode "` + bad + `" (want DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)`
		if err == nil || err.Error() != want {
			t.Errorf("ParseMode(%q) error = %v, want %q", bad, err, want)
		}
	}
}

func TestModeProperties(t *testing.T) {
	tests := []struct {
		m                                        Mode
		name                                     string
		valid, tls, verifiesChain, verifiesIdent bool
	}{
		{0, "Mode(0)", false, false, false, false},
		{Disabled, "DISABLED", true, false, false, false},
		{Required, "REQUIRED", true, true, false, false},
		{VerifyCA, "VERIFY_CA", true, true, true, false},
		{VerifyIdentity, "VERIFY_IDENTITY", true, true, true, true},
		{9, "Mode(9)", false, false, false, false},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.name {
			t.Errorf("Mode(%d).String() = %q, want %q", uint8(tt.m), got, tt.name)
		}
		if tt.m.Valid() != tt.valid || tt.m.UsesTLS() != tt.tls || tt.m.VerifiesChain() != tt.verifiesChain || tt.m.VerifiesIdentity() != tt.verifiesIdent {
			t.Errorf("%v: Valid/UsesTLS/VerifiesChain/VerifiesIdentity = %v/%v/%v/%v, want %v/%v/%v/%v", tt.m,
				tt.m.Valid(), tt.m.UsesTLS(), tt.m.VerifiesChain(), tt.m.VerifiesIdentity(), tt.valid, tt.tls, tt.verifiesChain, tt.verifiesIdent)
		}
		if tt.valid {
			back, err := ParseMode(tt.m.String())
			if err != nil || back != tt.m {
				t.Errorf("ParseMode(%v.String()) = %v, %v", tt.m, back, err)
			}
		}
	}
}

func TestModeYAML(t *testing.T) {
	var doc struct {
		Mode Mode `yaml:"ssl_mode"`
	}
	if err := yaml.Unmarshal([]byte("ssl_mode: verify_ca\n"), &doc); err != nil || doc.Mode != VerifyCA {
		t.Fatalf("decode: %v, %v", doc.Mode, err)
	}
	out, err := yaml.Marshal(doc)
	if err != nil || string(out) != "ssl_mode: VERIFY_CA\n" {
		t.Fatalf("encode: %q, %v", out, err)
	}
	err = yaml.Unmarshal([]byte("ssl_mode: PREFERRED\n"), &doc)
	if err == nil || !strings.Contains(err.Error(), `unknown ssl_mode "PREFERRED"`) {
		t.Fatalf("decode of a bad mode: %v", err)
	}
	if _, err := yaml.Marshal(struct{ M Mode }{7}); err == nil {
		t.Fatal("encoding an invalid Mode succeeded")
	}
}
