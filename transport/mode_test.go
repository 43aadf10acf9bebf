package transport

import (
	"testing"
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
