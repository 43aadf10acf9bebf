// Package acmetest runs a real Pebble ACME server
// (github.com/letsencrypt/pebble/v2, a go tool of this module) on 127.0.0.1
// for tests, with challenge validation switched off by Pebble's own
// PEBBLE_VA_ALWAYS_VALID setting. It is for tests only.
package acmetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/testutil"
)

// Pebble is a Pebble ACME server running as a real process for one test.
type Pebble struct {
	Directory string // ACME directory URL
	TLSRoot   string // PEM file trusted for the directory's TLS (pebble.minica.pem)
	CARoot    string // PEM file of the root that issues certificates (new at every start)
	Profile   string // the only profile, with the validity asked for
}

// Start builds and starts Pebble with one profile issuing certificates
// valid for validity, and stops it when the test ends. It skips the test
// under -short.
func Start(t testing.TB, validity time.Duration) *Pebble {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs Pebble; run without -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found; Pebble cannot be built")
	}
	dir := t.TempDir()
	modDir := testutil.ModuleDir(t, "github.com/letsencrypt/pebble/v2")
	bin := filepath.Join(dir, "pebble")
	if _, err := testutil.GoCommand("build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble"); err != nil {
		t.Fatal(err)
	}

	ports := FreePorts(t, 4)
	p := &Pebble{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		TLSRoot:   filepath.Join(modDir, "test", "certs", "pebble.minica.pem"),
		CARoot:    filepath.Join(dir, "pebble-root.pem"),
		Profile:   "groupwire-test",
	}
	confPath := writeConfig(t, dir, modDir, ports, p.Profile, validity)
	run(t, bin, confPath)
	p.waitUp(t, ports[1])
	return p
}

// writeConfig writes Pebble's configuration file into dir: every listener
// on 127.0.0.1, the module's own localhost certificate for the directory's
// TLS, and one profile issuing certificates valid for validity.
func writeConfig(t testing.TB, dir, modDir string, ports []int, profile string, validity time.Duration) string {
	t.Helper()
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"certificate":             filepath.Join(modDir, "test", "certs", "localhost", "cert.pem"),
		"privateKey":              filepath.Join(modDir, "test", "certs", "localhost", "key.pem"),
		"httpPort":                ports[2],
		"tlsPort":                 ports[3],
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{
			profile: map[string]any{"description": "groupwire test", "validityPeriod": int(validity / time.Second)},
		},
	}}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confPath, confJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return confPath
}

// run starts Pebble and stops it when the test ends, logging its output if
// the test failed.
func run(t testing.TB, bin, confPath string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", confPath)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out := &testutil.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start pebble: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
}

// waitUp waits until Pebble serves its directory and, on the management
// port, its root, which it writes to p.CARoot.
func (p *Pebble) waitUp(t testing.TB, managementPort int) {
	t.Helper()

	tlsRoots := x509.NewCertPool()
	minica, err := os.ReadFile(p.TLSRoot)
	if err != nil || !tlsRoots.AppendCertsFromPEM(minica) {
		t.Fatalf("read pebble's TLS root %s: %v", p.TLSRoot, err)
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlsRoots}, DisableKeepAlives: true},
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		root, err := httpGet(client, fmt.Sprintf("https://127.0.0.1:%d/roots/0", managementPort))
		if err == nil {
			if _, err := httpGet(client, p.Directory); err == nil {
				if err := os.WriteFile(p.CARoot, root, 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up within 15s: %v (its output follows)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func httpGet(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}
