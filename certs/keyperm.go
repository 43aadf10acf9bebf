package certs

import (
	"fmt"
	"io/fs"
	"os"
)

// KeyExposure says who besides the file's owner can read the private key
// file at path: "" when only the owner can (0400, 0600), or a sentence
// naming the mode and who can read it. A symbolic link is followed, as
// Kubernetes' secret volumes need. It is a warning, not an error: a
// dedicated group (0440, Kubernetes fsGroup) is a deliberate choice.
func KeyExposure(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("stat ssl_key %s: %w", path, err)
	}
	return exposure(fi.Mode().Perm()), nil
}

// exposure describes the read bits of perm beyond the owner's.
func exposure(perm fs.FileMode) string {
	var who string
	switch {
	case perm&0o044 == 0o044:
		who = "its group and every other user"
	case perm&0o004 != 0:
		who = "every other user"
	case perm&0o040 != 0:
		who = "its group"
	default:
		return ""
	}
	return fmt.Sprintf("mode %04o: the private key can be read by %s (chmod 0400, or 0440 with a group only the sidecar is in)", perm, who)
}
