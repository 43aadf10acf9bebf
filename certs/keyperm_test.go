package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyExposure: real files with real modes; group or other read bits
// are reported, owner-only modes are not, and a symlink is followed.
func TestKeyExposure(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		want string // in the sentence; "" for no warning
	}{
		{0o400, ""},
		{0o600, ""},
		{0o440, "mode 0440: the private key can be read by its group"},
		{0o604, "read by every other user"},
		{0o644, "read by its group and every other user"},
	} {
		path := filepath.Join(dir, "key-"+tc.mode.String()+".pem")
		if err := os.WriteFile(path, []byte("key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		link := path + ".link"
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, link} {
			got, err := KeyExposure(p)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("KeyExposure(%s, %v) = %q, want %q", filepath.Base(p), tc.mode, got, tc.want)
			}
		}
	}
	if _, err := KeyExposure(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "ssl_key") {
		t.Errorf("missing file: %v", err)
	}
}
