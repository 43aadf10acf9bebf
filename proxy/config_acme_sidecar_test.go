package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/certs/acmetest"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// TestSidecarsWithACMECertificates runs two real sidecars whose member
// certificates come from a real Pebble through tls.acme (IP identities,
// VERIFY_IDENTITY), and sends a line from mysql-1 to mysql-2's service
// through them. The certificates carry serverAuth only, so this also shows
// that the sidecar accepts them in the client role when acme is used.
func TestSidecarsWithACMECertificates(t *testing.T) {
	pb := acmetest.Start(t, time.Hour)
	directory, tlsRoot, caRoot := pb.Directory, pb.TLSRoot, pb.CARoot
	ip := ipPrefix()
	ports := acmetest.FreePorts(t, 4)
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
	cfg, err := cluster.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LockedBuffer{}
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
		if leaf := proxy.Stores(sc)["group"].Current().Cert.Leaf; len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != plan.LocalIP {
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
	logs.WaitFor(t, logWait, "acme: certificate in use", "acme: keeping the certificate renewed")
}
