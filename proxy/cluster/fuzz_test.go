package cluster

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig feeds whole cluster files through strict decoding,
// ${VAR} expansion, validation, planning and plan printing: none may panic,
// and every failure must be a *ConfigError naming its problems.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	env := func(key string) (string, bool) { return "mysql-" + key[:min(len(key), 3)], key != "UNSET" }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "fuzz.yaml")
		if err != nil {
			mustBeConfigError(t, err)
			return
		}
		for _, m := range cfg.Members() {
			p, err := cfg.Plan(m, env)
			if err != nil {
				mustBeConfigError(t, err)
				continue
			}
			FormatPlan(io.Discard, p)
		}
	})
}

func mustBeConfigError(t *testing.T, err error) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("not a *ConfigError: %T: %v", err, err)
	}
	if len(ce.Problems) == 0 {
		t.Fatalf("a ConfigError with no problem: %v", err)
	}
}

// FuzzListenAddr feeds listen and admin values, go-sockaddr templates
// included, through their evaluation: no panic, and an address that is
// accepted has a port.
func FuzzListenAddr(f *testing.F) {
	for _, s := range []string{":24900", "127.0.0.1:9900", "[::1]:1", `{{ GetAllInterfaces | include "flags" "loopback" | include "type" "IPv4" | attr "address" }}:24900`,
		"{{ GetPrivateIP }}:24900", "{{ .Nothing }}:1", "{{", "host:0", "[::1", ":65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := listenAddr(s)
		if err == nil && (b.Port < 1 || b.Port > 65535) {
			t.Fatalf("%q: accepted with port %d", s, b.Port)
		}
	})
}
