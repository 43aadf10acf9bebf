package devpki

import (
	"fmt"
	"path/filepath"
	"strings"
)

// File names inside a CA folder.
const (
	CAFile    = "ca.pem"     // the CA certificate (and its parents, if any)
	CAKeyFile = "ca-key.pem" // the CA private key, mode 0600
	CRLFile   = "crl.pem"    // the CA's current v2 CRL
	StateFile = "state.json" // issued and revoked serials, next CRL number
)

// CertPath returns the path of member's certificate in dir: NAME.pem.
func CertPath(dir, member string) string { return filepath.Join(dir, member+".pem") }

// KeyPath returns the path of member's private key in dir: NAME-key.pem.
func KeyPath(dir, member string) string { return filepath.Join(dir, member+"-key.pem") }

// checkMemberName reports whether name is usable as a member: a DNS label
// (1 to 63 letters, digits and hyphens, not starting or ending with a
// hyphen) whose files cannot collide with the CA's or another member's.
func checkMemberName(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("member name %q: a DNS label has 1 to 63 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
		if !ok {
			return fmt.Errorf("member name %q: character %q at %d is not a letter, digit or hyphen", name, r, i)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("member name %q: a DNS label cannot start or end with a hyphen", name)
	}
	lower := strings.ToLower(name)
	if lower == "ca" || lower == "crl" {
		return fmt.Errorf("member name %q: reserved, its files would clash with %s/%s", name, CAFile, CRLFile)
	}
	if strings.HasSuffix(lower, "-key") {
		return fmt.Errorf("member name %q: ends in -key, its certificate would clash with member %q's key file", name, name[:len(name)-4])
	}
	return nil
}
