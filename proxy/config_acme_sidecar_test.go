package proxy_test

import (
	"bufio"
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/localgroup"
)

// TestSidecarsWithACMECertificates runs two real sidecars whose member
// certificates come from a real Pebble through tls.acme (IP identities,
// VERIFY_IDENTITY), and sends a line from mysql-1 to mysql-2's service
// through them. The certificates carry serverAuth only, so this also shows
// that the sidecar accepts them in the client role when acme is used.
func TestSidecarsWithACMECertificates(t *testing.T) {
	directory, tlsRoot, caRoot := startPebbleForSidecars(t)
	ip := ipPrefix()
	ports := freeTCPPorts(t, 4)
	dir := t.TempDir()
	file := fmt.Sprintf(`
group: acme-test
tls:
  ssl_mode: VERIFY_IDENTITY
  ssl_ca: %s
  acme:
    directory: %s
    ca_root: %s
    email: dba@groupwire.test
    storage: acme/${GROUPWIRE_MEMBER}
    http_listen: "${GROUPWIRE_ACME_HTTP}"
    profile: groupwire-test
channels:
  group: {}
members:
  mysql-1: {address: "%[4]s.11:%[5]d", listen: "%[4]s.11:%[5]d", local_ip: %[4]s.11, ports: {group: %[6]d}}
  mysql-2: {address: "%[4]s.12:%[5]d", listen: "%[4]s.12:%[5]d", local_ip: %[4]s.12, ports: {group: %[7]d}}
`, caRoot, directory, tlsRoot, ip, ports[0], ports[1], ports[2])
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := proxy.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, member := range []string{"mysql-1", "mysql-2"} {
		httpListen := fmt.Sprintf("%s.%d:%d", ip, 11+i, ports[3])
		plan, err := cfg.Plan(member, func(k string) (string, bool) { return httpListen, k == "GROUPWIRE_ACME_HTTP" })
		if err != nil {
			t.Fatal(err)
		}
		sc, err := proxy.New(plan, proxy.Options{Logger: zerolog.New(logs).With().Timestamp().Logger(), DrainTimeout: time.Second})
		if err != nil {
			t.Fatalf("New %s: %v", member, err)
		}
		if leaf := sc.Stores()["group"].Current().Cert.Leaf; len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != plan.LocalIP {
			t.Errorf("%s: ACME certificate names %v, want its identity %s", member, leaf.IPAddresses, plan.LocalIP)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sc.Run(ctx); err != nil {
				t.Errorf("Run %s: %v", member, err)
			}
		}()
		select {
		case <-sc.Ready():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not ready; log:\n%s", member, logs.String())
		}
	}
	echo, err := localgroup.ListenEcho(ctx, "mysql-2", fmt.Sprintf("%s.12:%d", ip, ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()

	// mysql-1 reaches mysql-2 at its own loopback address, port of mysql-2.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("%s.11:%d", ip, ports[2]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, "hello over acme"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "mysql-2: hello over acme\n" {
		t.Fatalf("echo through the sidecars: %q, %v; log:\n%s", line, err, logs.String())
	}
	logs.waitFor(t, "acme: certificate in use", "acme: keeping the certificate renewed")
}

// startPebbleForSidecars builds and starts Pebble (a go tool of this
// module) on 127.0.0.1 with validation off and one profile,
// "groupwire-test", of one-hour certificates. It returns the directory
// URL, the PEM file of the directory's TLS root and the PEM file of the
// root that issues the certificates.
func startPebbleForSidecars(t *testing.T) (directory, tlsRoot, caRoot string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs Pebble; run without -short")
	}
	dir := t.TempDir()
	modDir := goCmd(t, "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2")
	bin := filepath.Join(dir, "pebble")
	goCmd(t, "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	ports := freeTCPPorts(t, 4)
	certs := filepath.Join(modDir, "test", "certs")
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"certificate":             filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":              filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                ports[2], "tlsPort": ports[3],
		"retryAfter":   map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm": "ecdsa",
		"profiles":     map[string]any{"groupwire-test": map[string]any{"validityPeriod": 3600}},
	}})
	confPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", confPath)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out := &syncBuffer{}
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
	tlsRoot = filepath.Join(certs, "pebble.minica.pem")
	pool := x509.NewCertPool()
	if pemData, err := os.ReadFile(tlsRoot); err != nil || !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("read %s: %v", tlsRoot, err)
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	directory = fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0])
	caRoot = filepath.Join(dir, "pebble-root.pem")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		root, err := fetch(client, fmt.Sprintf("https://127.0.0.1:%d/roots/0", ports[1]))
		if err == nil {
			if _, err = fetch(client, directory); err == nil {
				if err := os.WriteFile(caRoot, root, 0o600); err != nil {
					t.Fatal(err)
				}
				return directory, tlsRoot, caRoot
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up within 15s: %v\n%s", err, out.String())
		}
	}
}

func fetch(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func goCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// freeTCPPorts returns n ports that were free on 127.0.0.1 a moment ago.
func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
