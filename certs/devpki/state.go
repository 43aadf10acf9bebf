package devpki

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the format version written to state.json.
const stateVersion = 1

// dirState is the content of state.json: everything the CA folder needs
// beyond its PEM files to issue, renew and revoke.
type dirState struct {
	Version       int                     `json:"version"`
	NextCRLNumber int64                   `json:"next_crl_number"`
	Members       map[string]*memberState `json:"members"`
	Revoked       []revokedCert           `json:"revoked"`
	CRLURL        string                  `json:"crl_url,omitempty"` // distribution point of new certificates
}

// memberState records the certificates issued to one member.
type memberState struct {
	Current string       `json:"current"` // serial (hex) of the certificate in NAME.pem
	Issued  []issuedCert `json:"issued"`  // every certificate ever issued, oldest first
}

// issuedCert is one issued certificate.
type issuedCert struct {
	Serial    string    `json:"serial"` // hex, as `openssl x509 -serial` prints it
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// revokedCert is one entry of the CRL.
type revokedCert struct {
	Serial    string    `json:"serial"`
	Member    string    `json:"member"`
	RevokedAt time.Time `json:"revoked_at"`
}

// serialHex formats a serial number as upper-case hex.
func serialHex(n *big.Int) string { return fmt.Sprintf("%X", n) }

// parseSerialHex parses a serial written by serialHex.
func parseSerialHex(s string) (*big.Int, error) {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() < 0 {
		return nil, fmt.Errorf("serial %q is not a hex number", s)
	}
	return n, nil
}

// isRevoked reports whether serial (hex) is on the revoked list.
func (s *dirState) isRevoked(serial string) bool {
	for _, r := range s.Revoked {
		if r.Serial == serial {
			return true
		}
	}
	return false
}

// loadState reads and checks dir/state.json.
func loadState(dir string) (*dirState, error) {
	path := filepath.Join(dir, StateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devpki: read state: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st dirState
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("devpki: parse %s: %w", path, err)
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", path, err)
	}
	return &st, nil
}

// validate checks the invariants the directory operations rely on.
func (s *dirState) validate() error {
	if s.Version != stateVersion {
		return fmt.Errorf("version %d, want %d", s.Version, stateVersion)
	}
	if s.NextCRLNumber < 1 {
		return fmt.Errorf("next_crl_number %d, want 1 or more", s.NextCRLNumber)
	}
	if s.Members == nil {
		s.Members = map[string]*memberState{}
	}
	for name, m := range s.Members {
		if err := checkMemberName(name); err != nil {
			return fmt.Errorf("members: %w", err)
		}
		if m == nil {
			return fmt.Errorf("members.%s: null", name)
		}
		if _, err := parseSerialHex(m.Current); err != nil {
			return fmt.Errorf("members.%s.current: %w", name, err)
		}
		for i, c := range m.Issued {
			if _, err := parseSerialHex(c.Serial); err != nil {
				return fmt.Errorf("members.%s.issued[%d].serial: %w", name, i, err)
			}
		}
	}
	for i, r := range s.Revoked {
		if _, err := parseSerialHex(r.Serial); err != nil {
			return fmt.Errorf("revoked[%d].serial: %w", i, err)
		}
	}
	return nil
}

// save writes s to dir/state.json atomically.
func (s *dirState) save(dir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("devpki: encode state: %w", err)
	}
	return WriteFile(filepath.Join(dir, StateFile), append(data, '\n'), 0o644)
}
