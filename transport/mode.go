package transport

import (
	"fmt"
	"strings"
)

// Mode is a group_replication_ssl_mode value. The zero Mode means "not
// set" (a channel then inherits the group's); it is not a valid mode.
type Mode uint8

// The four ssl modes, in MySQL's order.
const (
	Disabled       Mode = iota + 1 // plain TCP
	Required                       // TLS, no peer checks (encryption only)
	VerifyCA                       // TLS, peer chain checked against ssl_ca/ssl_capath and CRLs
	VerifyIdentity                 // VerifyCA, and the certificate must name the peer
)

var modeNames = [...]string{Disabled: "DISABLED", Required: "REQUIRED", VerifyCA: "VERIFY_CA", VerifyIdentity: "VERIFY_IDENTITY"}

// String returns MySQL's spelling, such as "VERIFY_IDENTITY", or
// "Mode(n)" for a value that is not a mode.
func (m Mode) String() string {
	if m.Valid() {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool { return m >= Disabled && m <= VerifyIdentity }

// UsesTLS reports whether links in mode m run TLS.
func (m Mode) UsesTLS() bool { return m >= Required && m <= VerifyIdentity }

// VerifiesChain reports whether mode m checks the peer's certificate chain
// (VERIFY_CA and VERIFY_IDENTITY).
func (m Mode) VerifiesChain() bool { return m == VerifyCA || m == VerifyIdentity }

// VerifiesIdentity reports whether mode m checks that the peer's
// certificate names the peer (VERIFY_IDENTITY).
func (m Mode) VerifiesIdentity() bool { return m == VerifyIdentity }

// ParseMode parses an ssl_mode value, case-insensitively, ignoring
// surrounding spaces.
func ParseMode(s string) (Mode, error) {
	t := strings.TrimSpace(s)
	for m := Disabled; m <= VerifyIdentity; m++ {
		if strings.EqualFold(t, modeNames[m]) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown ssl_mode %q (want DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)", s)
}

// MarshalText returns MySQL's spelling; it fails for a value that is not
// a mode.
func (m Mode) MarshalText() ([]byte, error) {
	if !m.Valid() {
		return nil, fmt.Errorf("marshal ssl_mode: invalid value %d", uint8(m))
	}
	return []byte(modeNames[m]), nil
}

// UnmarshalText parses text as ParseMode does, so a Mode can be decoded
// straight from YAML or JSON.
func (m *Mode) UnmarshalText(text []byte) error {
	v, err := ParseMode(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
