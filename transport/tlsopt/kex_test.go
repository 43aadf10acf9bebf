package tlsopt

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestParseKeyExchange(t *testing.T) {
	ids, err := ParseKeyExchange("X25519MLKEM768:x25519, prime256v1:X25519")
	if err != nil {
		t.Fatal(err)
	}
	if want := []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}; !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
	if ids, err := ParseKeyExchange(" "); ids != nil || err != nil {
		t.Fatalf("empty: %v %v", ids, err)
	}
	_, err = ParseKeyExchange("X25519:ffdhe2048")
	if err == nil || !strings.Contains(err.Error(), `unknown key exchange group "ffdhe2048"`) || !strings.Contains(err.Error(), "X25519MLKEM768") {
		t.Fatalf("unknown group: %v", err)
	}
}
