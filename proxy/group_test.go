package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
)

// assertChannelCAs checks that each channel's links present that
// channel's own certificate: the recovery channel's is signed by the
// recovery CA and not by the group CA, and the other way round. A sidecar
// that ignored channels.recovery.tls would present the group certificate.
func assertChannelCAs(t *testing.T, g *localgroup.Group) {
	t.Helper()
	plan, err := g.Plan("mysql-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range g.Channels {
		leaf := presentedLeaf(t, g, plan.Listen, ch)
		for _, other := range g.Channels {
			err := leaf.CheckSignatureFrom(g.CAs[other].CA.Cert)
			if other == ch && err != nil {
				t.Errorf("channel %s presents %q, not signed by its own CA: %v", ch, leaf.Subject, err)
			}
			if other != ch && err == nil {
				t.Errorf("channel %s presents %q, signed by channel %s's CA", ch, leaf.Subject, other)
			}
		}
	}
}

// presentedLeaf opens a TLS connection to a sidecar's link listener with
// channel's ALPN and mysql-2's certificate of that channel, and returns
// the certificate the sidecar presented.
func presentedLeaf(t *testing.T, g *localgroup.Group, addr, channel string) *x509.Certificate {
	t.Helper()
	client, err := g.CAs[channel].Leaves["mysql-2"].TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		NextProtos:         []string{"gw1/" + channel},
		Certificates:       []tls.Certificate{client},
		InsecureSkipVerify: true, // the test inspects the certificate itself
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("TLS to %s [%s]: %v", addr, channel, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// logWait bounds the wait for a log line that a sidecar writes within
// milliseconds of the event; generous so a loaded machine never misses it.
const logWait = 5 * time.Second

// ipPrefix returns a random 127.x.y prefix so that concurrently running
// test binaries never share addresses.
func ipPrefix() string {
	return fmt.Sprintf("127.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250))
}

// startGroup prepares and starts a local group and stops it at the end of
// the test. It returns the group and its log.
func startGroup(t *testing.T, opts localgroup.Options, tweak ...func(*localgroup.Group)) (*localgroup.Group, *localgroup.Running, *testutil.LockedBuffer) {
	t.Helper()
	opts.Dir = t.TempDir()
	if opts.IPPrefix == "" {
		opts.IPPrefix = ipPrefix()
	}
	g, err := localgroup.Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(g)
	}
	logs := &testutil.LockedBuffer{}
	r, err := g.Start(context.Background(), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return g, r, logs
}

// TestEveryPairEveryMode: in each ssl_mode, every member reaches every
// other member on both channels, the second channel with its own CA and
// member certificates.
func TestEveryPairEveryMode(t *testing.T) {
	for _, mode := range []string{"DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"} {
		t.Run(mode, func(t *testing.T) {
			g, _, logs := startGroup(t, localgroup.Options{Mode: mode, ChannelCAs: true})
			ctx := context.Background()
			for _, from := range g.Members {
				for _, to := range g.Members {
					if from.Name == to.Name {
						continue
					}
					for _, ch := range g.Channels {
						msg := fmt.Sprintf("%s to %s on %s", from.Name, to.Name, ch)
						if _, err := g.Ping(ctx, from.Name, to.Name, ch, msg); err != nil {
							t.Fatalf("%s → %s [%s]: %v\nlog:\n%s", from.Name, to.Name, ch, err, logs)
						}
					}
				}
			}
			if mode != "DISABLED" {
				assertChannelCAs(t, g)
			}
			if mode == "REQUIRED" && !strings.Contains(logs.String(), "verifies no peer") {
				t.Errorf("REQUIRED did not warn at start; log:\n%s", logs)
			}
		})
	}
}
