package certs_test

import (
	"context"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/spiffetest"
	"github.com/groupwire/groupwire/internal/testutil"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
)

const memberID = "spiffe://prod.example/galera/node-1"

func newCA(t *testing.T, name string) *devpki.CA {
	t.Helper()
	ca, err := devpki.NewRootCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// listen starts a fake Workload API at a fresh socket.
func listen(t *testing.T) *spiffetest.Server {
	t.Helper()
	path, cleanup, err := spiffetest.SocketPath("agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	srv, err := spiffetest.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestSPIFFEFetchWaitsForTheAgent: with no Workload API at the socket the
// first fetch says so and retries, and succeeds once the agent is up.
func TestSPIFFEFetchWaitsForTheAgent(t *testing.T) {
	path, cleanup, err := spiffetest.SocketPath("agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	store, err := certs.NewStore("channel group", certs.Source{})
	if err != nil {
		t.Fatal(err)
	}
	src := certs.NewSPIFFE(certs.SPIFFEConfig{Socket: "unix://" + path, ID: memberID}, store)
	ca := newCA(t, "spire ca")
	resp, leaf := spiffetest.Issue(t, ca, memberID, ca.Cert)
	retried := make(chan error, 10)
	var once sync.Once
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second) // generous: the agent is up after the first retry
	defer cancel()
	err = src.Fetch(ctx, func(err error) {
		retried <- err
		once.Do(func() {
			srv, err := spiffetest.Listen(path)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(srv.Close)
			srv.Set(resp)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if first := <-retried; !strings.Contains(first.Error(), "spiffe unix://"+path) {
		t.Errorf("the retry does not name the socket: %v", first)
	}
	if got := store.Current().Cert.Leaf; !got.Equal(leaf.Cert) {
		t.Fatalf("store holds %v, want the SVID", got.Subject)
	}
}

// TestSPIFFEWatch: rotations of the SVID are put in force without a
// trust change; a new bundle is a trust change; an SVID for another ID,
// garbage, and an SVID that does not chain to its bundle are refused with
// the reason, and the material in force stays.
func TestSPIFFEWatch(t *testing.T) {
	srv := listen(t)
	ca := newCA(t, "spire ca")
	resp, _ := spiffetest.Issue(t, ca, memberID, ca.Cert)
	srv.Set(resp)
	store, err := certs.NewStore("channel group", certs.Source{})
	if err != nil {
		t.Fatal(err)
	}
	src := certs.NewSPIFFE(certs.SPIFFEConfig{Socket: srv.Addr, ID: memberID}, store)
	if err := src.Fetch(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	trust, errs := make(chan struct{}, 10), make(chan error, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- src.Watch(ctx, func() { trust <- struct{}{} }, func(err error) { errs <- err }) }()
	defer func() { cancel(); <-done }()

	resp, rotated := spiffetest.Issue(t, ca, memberID, ca.Cert)
	srv.Set(resp)
	waitLeaf(t, store, rotated.Cert)
	select {
	case <-trust:
		t.Fatal("a rotation of the SVID alone was reported as a trust change")
	default:
	}

	other := newCA(t, "spire ca 2")
	resp, _ = spiffetest.Issue(t, ca, memberID, ca.Cert, other.Cert)
	srv.Set(resp)
	select {
	case <-trust:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(30 * time.Second): // generous: the push takes milliseconds
		t.Fatal("a new bundle was not reported")
	}

	held := store.Current().Cert.Leaf
	wrongID, _ := spiffetest.Issue(t, ca, "spiffe://prod.example/galera/node-2", ca.Cert)
	foreign, _ := spiffetest.Issue(t, other, memberID, ca.Cert)
	otherDomain, _ := spiffetest.Issue(t, ca, "spiffe://evil.example/galera/node-1", ca.Cert)
	garbage := &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{SpiffeId: memberID, X509Svid: []byte("garbage"), X509SvidKey: []byte("x"), Bundle: ca.Cert.Raw}}}
	for _, c := range []struct {
		name string
		resp *workload.X509SVIDResponse
		want string
	}{
		{"an SVID for another SPIFFE ID", wrongID, "offers an SVID for spiffe://prod.example/galera/node-2, not for this member's identity " + memberID},
		{"an SVID not signed by its bundle", foreign, "does not chain to its trust domain's bundle"},
		{"an SVID of another trust domain", otherDomain, "offers an SVID for spiffe://evil.example/galera/node-1, not for this member's identity " + memberID},
		{"garbage", garbage, "x509"},
	} {
		srv.Set(c.resp)
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no error reported", c.name)
		}
		if !store.Current().Cert.Leaf.Equal(held) {
			t.Fatalf("%s replaced the SVID in force", c.name)
		}
	}
	if _, _, failed := src.Counts(); failed == 0 {
		t.Error("the garbage update was not counted as a failure")
	}
}

// waitLeaf waits for want to be the store's certificate. The bound is
// generous: the push takes milliseconds.
func waitLeaf(t *testing.T, store *certs.Store, want *x509.Certificate) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, "the rotated SVID in force", func() bool { return store.Current().Cert.Leaf.Equal(want) })
}
