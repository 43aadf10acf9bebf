package certs

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

// dpServer is a CRL distribution point: an HTTP server on loopback that
// serves whatever the test puts in body, or fails as told.
type dpServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     []byte
	status   int           // 0 means 200
	delay    time.Duration // before answering
	redirect string        // answer 302 to this
	// arrived, if set, is sent on as a request comes in, which then waits
	// for release to close before it answers
	arrived, release chan struct{}
	hits             atomic.Int64
}

func newDPServer(t *testing.T) *dpServer {
	d := &dpServer{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		d.mu.Lock()
		arrived, release := d.arrived, d.release
		d.mu.Unlock()
		if arrived != nil {
			select {
			case arrived <- struct{}{}:
			default: // the test counts the first ones only
			}
			<-release
		}
		d.mu.Lock()
		body, status, delay, redirect := d.body, d.status, d.delay, d.redirect
		d.mu.Unlock()
		time.Sleep(delay)
		switch {
		case redirect != "":
			http.Redirect(w, r, redirect, http.StatusFound)
		case status != 0:
			w.WriteHeader(status)
		default:
			w.Write(body)
		}
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *dpServer) serve(body []byte) { d.set(func() { d.body, d.status = body, 0 }) }
func (d *dpServer) fail(status int)   { d.set(func() { d.status = status }) }
func (d *dpServer) set(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f()
}

// fetchPKI is a root CA whose leaves name the server's /ca.crl as their
// distribution point, and a store that trusts the root and fetches CRLs.
type fetchPKI struct {
	root  *devpki.CA
	dp    *dpServer
	url   string
	store *Store
}

func newFetchPKI(t *testing.T, failOpen bool, opts CRLFetchOptions) *fetchPKI {
	t.Helper()
	root, err := devpki.NewRootCA("groupwire fetch test root")
	if err != nil {
		t.Fatal(err)
	}
	p := &fetchPKI{root: root, dp: newDPServer(t)}
	p.url = p.dp.URL + "/ca.crl"
	dir := t.TempDir()
	writeFile(t, dir+"/ca.pem", root.CertPEM)
	st, err := NewStore("channel group", Source{CA: dir + "/ca.pem", CRLFetch: true, CRLFetchFailOpen: failOpen})
	if err != nil {
		t.Fatal(err)
	}
	st.SetCRLFetchOptions(opts)
	p.store = st
	return p
}

// leaf issues a leaf naming the distribution point.
func (p *fetchPKI) leaf(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	l, err := p.root.Issue(devpki.LeafTemplate{CommonName: cn, CRLDistributionPoints: []string{p.url}})
	if err != nil {
		t.Fatal(err)
	}
	return l.Cert
}

// crl is a CRL of the root revoking serials, valid from now-1m for valid.
func (p *fetchPKI) crl(t *testing.T, valid time.Duration, serials ...*big.Int) []byte {
	t.Helper()
	now := time.Now()
	b, err := p.root.CRL(serials, now.Add(-time.Minute), now.Add(valid))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *fetchPKI) verify(c *x509.Certificate) error {
	_, err := p.store.Current().VerifyPeer([]*x509.Certificate{c}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Now())
	return err
}

func (p *fetchPKI) lastError() string {
	for _, f := range p.store.FetchedCRLs() {
		return f.LastError
	}
	return "no distribution point seen"
}

// TestFetchedCRLRevokes: the first handshake fetches the CRL from the
// certificate's distribution point; after the CA revokes the certificate
// there, a refresh (SIGHUP) puts the new CRL in force and the peer is
// refused, naming the URL.
func TestFetchedCRLRevokes(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	good, bad := p.leaf(t, "mysql-1"), p.leaf(t, "mysql-2")
	p.dp.serve(p.crl(t, time.Hour))
	for _, c := range []*x509.Certificate{good, bad} {
		if err := p.verify(c); err != nil {
			t.Fatalf("%s before revocation: %v", c.Subject, err)
		}
	}
	if n := p.dp.hits.Load(); n != 1 {
		t.Errorf("two peers of one issuer fetched %d times, want 1 (cached)", n)
	}
	p.dp.serve(p.crl(t, time.Hour, bad.SerialNumber))
	if err := p.store.RefreshCRLs(t.Context()); err != nil {
		t.Fatal(err)
	}
	var revoked *RevokedError
	if err := p.verify(bad); !errors.As(err, &revoked) || revoked.CRL != p.url {
		t.Fatalf("revoked peer after refresh: %v, want revoked by CRL %s", err, p.url)
	}
	if err := p.verify(good); err != nil {
		t.Fatalf("good peer after refresh: %v", err)
	}
}

// TestFetchedCRLVerificationIsRemembered: a peer verified against a
// fetched CRL is remembered until that CRL's nextUpdate, also when its
// certificate names a second distribution point that was never needed.
func TestFetchedCRLVerificationIsRemembered(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	l, err := p.root.Issue(devpki.LeafTemplate{CommonName: "mysql-1", CRLDistributionPoints: []string{p.url, p.dp.URL + "/mirror.crl"}})
	if err != nil {
		t.Fatal(err)
	}
	p.dp.serve(p.crl(t, time.Hour))
	// The first verification fetches, and the new CRL starts a new cache;
	// the second is the one to remember.
	for range 2 {
		if err := p.verify(l.Cert); err != nil {
			t.Fatal(err)
		}
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, ok := p.store.Current().verified.get(verifyKey([]*x509.Certificate{l.Cert}, usages), time.Now()); !ok {
		t.Fatal("the verification was not remembered: every resumed link would verify the chain again")
	}
	if n := p.dp.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (the second point is not needed)", n)
	}
}

// TestFetchedCRLNoDistributionPoint: with ssl_crl_fetch on, a certificate
// that names no distribution point and has no CRL file is refused, as
// CRL checking always is without a CRL.
func TestFetchedCRLNoDistributionPoint(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	l, err := p.root.Issue(devpki.LeafTemplate{CommonName: "mysql-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.verify(l.Cert); !errors.Is(err, ErrCRLMissing) {
		t.Fatalf("no distribution point: %v, want %v", err, ErrCRLMissing)
	}
}

// TestFetchedCRLOnlyForTrustedChains: a certificate from a CA the store
// does not trust is refused before its distribution point is fetched, so
// a stranger cannot make the sidecar request a URL; a distribution point
// other than http:// is never fetched.
func TestFetchedCRLOnlyForTrustedChains(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	stranger, err := devpki.NewRootCA("stranger")
	if err != nil {
		t.Fatal(err)
	}
	l, err := stranger.Issue(devpki.LeafTemplate{CommonName: "mysql-1", CRLDistributionPoints: []string{p.url}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.verify(l.Cert); err == nil {
		t.Fatal("a stranger's certificate was accepted")
	}
	if n := p.dp.hits.Load(); n != 0 {
		t.Fatalf("a stranger's certificate made the sidecar fetch its distribution point %d time(s)", n)
	}
	https := strings.Replace(p.url, "http://", "https://", 1)
	l, err = p.root.Issue(devpki.LeafTemplate{CommonName: "mysql-2", CRLDistributionPoints: []string{https, "ldap://ca.test/cn=crl"}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.verify(l.Cert)
	if !errors.Is(err, ErrCRLMissing) || strings.Contains(err.Error(), "could be fetched") {
		t.Fatalf("only https:// and ldap:// points: %v, want %v with no fetch tried", err, ErrCRLMissing)
	}
	if got := p.store.FetchedCRLs(); len(got) != 0 {
		t.Fatalf("distribution points tracked: %+v, want none", got)
	}
}

// TestFetchedCRLOutages: the server down with a valid CRL cached keeps
// peers working; past the CRL's nextUpdate, fail closed refuses them, and
// fail open lets them through counted, though never a revoked one.
func TestFetchedCRLOutages(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail closed", true: "fail open"}[failOpen], func(t *testing.T) {
			p := newFetchPKI(t, failOpen, CRLFetchOptions{})
			good, bad := p.leaf(t, "mysql-1"), p.leaf(t, "mysql-2")
			// Generous: the CRL must outlive the verifications below,
			// which take milliseconds, and then expire.
			const valid = 2 * time.Second
			p.dp.serve(p.crl(t, valid, bad.SerialNumber))
			if err := p.verify(good); err != nil {
				t.Fatal(err)
			}
			p.dp.fail(http.StatusServiceUnavailable)
			if err := p.store.RefreshCRLs(t.Context()); err == nil || !strings.Contains(err.Error(), "503") {
				t.Fatalf("refresh from a down server: %v", err)
			}
			if err := p.verify(good); err != nil {
				t.Fatalf("server down, CRL still valid: %v", err)
			}
			time.Sleep(valid + 100*time.Millisecond)
			err := p.verify(good)
			if failOpen {
				if err != nil || p.store.FailOpens() == 0 {
					t.Fatalf("fail open past nextUpdate: %v, %d counted", err, p.store.FailOpens())
				}
			} else if !errors.Is(err, ErrCRLExpired) {
				t.Fatalf("fail closed past nextUpdate: %v, want %v", err, ErrCRLExpired)
			}
			var revoked *RevokedError
			if err := p.verify(bad); !errors.As(err, &revoked) {
				t.Fatalf("revoked peer past nextUpdate: %v, want revoked", err)
			}
		})
	}
}

// TestFetchedCRLHostile: what a distribution point sends that must not be
// taken is refused with the reason, and the last good CRL stays in force.
func TestFetchedCRLHostile(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{Timeout: 300 * time.Millisecond, MaxBytes: 64 << 10})
	good, bad := p.leaf(t, "mysql-1"), p.leaf(t, "mysql-2")
	p.dp.serve(p.crl(t, time.Hour))
	if err := p.verify(bad); err != nil {
		t.Fatal(err)
	}
	impostor, err := devpki.NewRootCA("groupwire fetch test root") // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := impostor.CRL([]*big.Int{good.SerialNumber}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	older, err := p.root.CRL([]*big.Int{good.SerialNumber}, time.Now().Add(-2*time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	future, err := p.root.CRL([]*big.Int{good.SerialNumber}, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := devpki.NewRootCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, err := otherCA.CRL([]*big.Int{good.SerialNumber}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stale, err := p.root.CRLFrom(&x509.RevocationList{ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func()
		want  string
	}{
		{"no nextUpdate after its thisUpdate", func() { p.dp.serve(stale) }, "has no nextUpdate after its thisUpdate"},
		{"signed by another key", func() { p.dp.serve(wrongKey) }, "signature does not verify"},
		{"of another issuer", func() { p.dp.serve(otherIssuer) }, `CRL issuer "CN=another CA" is not the certificate's issuer`},
		{"issued in the future", func() { p.dp.serve(future) }, "is in the future"},
		{"malformed", func() { p.dp.serve([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")) }, "parse CRL"},
		{"oversized", func() { p.dp.serve(make([]byte, 64<<10+1)) }, "larger than 65536 bytes"},
		{"older than the one in force", func() { p.dp.serve(older) }, "older than that of the CRL in force"},
		{"slow", func() {
			p.dp.set(func() { p.dp.body, p.dp.delay = p.crl(t, time.Hour, good.SerialNumber), 2*time.Second })
		}, "deadline exceeded"},
		{"redirecting", func() { p.dp.set(func() { p.dp.delay, p.dp.redirect = 0, p.dp.URL+"/elsewhere.crl" }) }, "redirect to"},
		{"not found", func() { p.dp.set(func() { p.dp.redirect, p.dp.status = "", http.StatusNotFound }) }, "404"},
	}
	for _, c := range cases {
		c.setup()
		err := p.store.RefreshCRLs(t.Context())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(p.lastError(), c.want) {
			t.Errorf("%s: refresh said %v, status says %q; want %q", c.name, err, p.lastError(), c.want)
		}
		if err := p.verify(good); err != nil {
			t.Errorf("%s: the last good CRL is no longer in force: %v", c.name, err)
		}
	}
}

// TestFetchedCRLPartitionRefused: a CRL whose issuingDistributionPoint
// covers only some certificates is not the issuer's whole list.
func TestFetchedCRLPartitionRefused(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	good := p.leaf(t, "mysql-1")
	// IssuingDistributionPoint { onlyContainsCACerts [2] TRUE }
	idp := []byte{0x30, 0x03, 0x82, 0x01, 0xff}
	now := time.Now()
	partition, err := p.root.CRLFrom(&x509.RevocationList{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: idpOID, Critical: true, Value: idp}}})
	if err != nil {
		t.Fatal(err)
	}
	p.dp.serve(partition)
	if err := p.verify(good); !errors.Is(err, ErrCRLMissing) || !strings.Contains(err.Error(), "partition") {
		t.Fatalf("partitioned CRL: %v", err)
	}
}

// TestFetchedCRLOneFetchAtATime: handshakes that need the same issuer's
// CRL at once share one fetch, and a failed fetch is not repeated by the
// handshakes that follow while it backs off.
func TestFetchedCRLOneFetchAtATime(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	peers := []*x509.Certificate{p.leaf(t, "a"), p.leaf(t, "b"), p.leaf(t, "c"), p.leaf(t, "d")}
	p.dp.set(func() { p.dp.body, p.dp.delay = p.crl(t, time.Hour), 300*time.Millisecond })
	var wg sync.WaitGroup
	for _, c := range peers {
		wg.Go(func() {
			if err := p.verify(c); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := p.dp.hits.Load(); n != 1 {
		t.Fatalf("%d concurrent handshakes fetched %d times, want 1", len(peers), n)
	}

	q := newFetchPKI(t, false, CRLFetchOptions{})
	q.dp.fail(http.StatusInternalServerError)
	peer := q.leaf(t, "a")
	for range 5 {
		if err := q.verify(peer); !errors.Is(err, ErrCRLMissing) {
			t.Fatalf("no CRL to be had: %v", err)
		}
	}
	if n := q.dp.hits.Load(); n != 1 {
		t.Fatalf("5 handshakes during the back-off fetched %d times, want 1", n)
	}
}

// TestRunCRLFetchRefreshesAhead: RunCRLFetch fetches a CRL again before
// its nextUpdate, and reports the change, with no SIGHUP.
func TestRunCRLFetchRefreshesAhead(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	bad := p.leaf(t, "mysql-2")
	// Issued a minute ago and valid for a minute and 4 s: three quarters
	// of its validity are over, so the refresh is due at once.
	p.dp.serve(p.crl(t, 4*time.Second))
	if err := p.verify(bad); err != nil {
		t.Fatal(err)
	}
	p.dp.serve(p.crl(t, time.Hour, bad.SerialNumber))
	changed := make(chan struct{}, 1)
	go p.store.RunCRLFetch(t.Context(), func() { signal(changed) }, nil)
	deadline := time.After(30 * time.Second) // generous: the refresh is due within a second
	for {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no refresh ahead of nextUpdate")
		}
		var revoked *RevokedError
		if err := p.verify(bad); errors.As(err, &revoked) {
			return
		}
	}
}

// TestFetchedCRLEveryCertificateOfTheChain: the intermediate's CRL comes
// from the root's distribution point and the leaf's from the
// intermediate's; revoking the intermediate at the root's point refuses
// its leaves (CRL_CHECK_ALL).
func TestFetchedCRLEveryCertificateOfTheChain(t *testing.T) {
	p := newFetchPKI(t, false, CRLFetchOptions{})
	rootDP := newDPServer(t)
	inter, err := p.root.NewIntermediate("groupwire fetch test intermediate", rootDP.URL+"/root.crl")
	if err != nil {
		t.Fatal(err)
	}
	l, err := inter.Issue(devpki.LeafTemplate{CommonName: "mysql-1", CRLDistributionPoints: []string{p.url}})
	if err != nil {
		t.Fatal(err)
	}
	interCRL, err := inter.CRL(nil, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.dp.serve(interCRL)
	rootDP.serve(p.crl(t, time.Hour))
	chain := []*x509.Certificate{l.Cert, inter.Cert}
	verify := func() error {
		_, err := p.store.Current().VerifyPeer(chain, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Now())
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	if rootDP.hits.Load() != 1 || p.dp.hits.Load() != 1 {
		t.Fatalf("fetches: root's point %d, intermediate's %d; want 1 each", rootDP.hits.Load(), p.dp.hits.Load())
	}
	rootDP.serve(p.crl(t, time.Hour, inter.Cert.SerialNumber))
	if err := p.store.RefreshCRLs(t.Context()); err != nil {
		t.Fatal(err)
	}
	var revoked *RevokedError
	if err := verify(); !errors.As(err, &revoked) || revoked.Subject != inter.Cert.Subject.String() {
		t.Fatalf("leaf under a revoked intermediate: %v, want the intermediate revoked", err)
	}
}

// TestFetchedCRLEntriesAreBounded: the distribution points a fetcher
// tracks are bounded (certificates a peer makes up could otherwise name
// new URLs without end); the one past the bound is refused, naming its
// URL, and those already tracked are still served.
func TestFetchedCRLEntriesAreBounded(t *testing.T) {
	root, err := devpki.NewRootCA("groupwire bound test root")
	if err != nil {
		t.Fatal(err)
	}
	f := newCRLFetcher(CRLFetchOptions{}, false)
	key := func(i int) fetchKey {
		return fetchKey{fmt.Sprintf("http://dp.invalid/%d.crl", i), string(root.Cert.RawSubjectPublicKeyInfo)}
	}
	for i := range maxFetchEntries {
		if _, err := f.entry(key(i), root.Cert); err != nil {
			t.Fatalf("distribution point %d of %d refused: %v", i+1, maxFetchEntries, err)
		}
	}
	_, err = f.entry(key(maxFetchEntries), root.Cert)
	if err == nil || !strings.Contains(err.Error(), key(maxFetchEntries).url) || !strings.Contains(err.Error(), "already tracked") {
		t.Fatalf("distribution point past the bound: err = %v, want a refusal naming its URL", err)
	}
	if e, err := f.entry(key(7), root.Cert); err != nil || e.key != key(7) {
		t.Fatalf("a tracked distribution point after the bound was hit: %v, %v", e, err)
	}
}

// TestFetchedCRLRefreshesTogether: the distribution points are refreshed
// together, not one after another, on SIGHUP and when they fall due, so
// that one that hangs until its timeout does not hold the others up. The
// server answers only once both requests are in flight; fetched one after
// another, the second never comes while the first waits. The 20 s bound is
// for a loaded machine: both requests leave at once when it works.
func TestFetchedCRLRefreshesTogether(t *testing.T) {
	for name, trigger := range map[string]func(*fetchPKI) <-chan error{
		"SIGHUP": func(p *fetchPKI) <-chan error {
			done := make(chan error, 1)
			go func() { done <- p.store.RefreshCRLs(context.Background()) }()
			return done
		},
		"due": func(p *fetchPKI) <-chan error {
			go p.store.RunCRLFetch(t.Context(), nil, nil) // ends with the test
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := newFetchPKI(t, false, CRLFetchOptions{Timeout: time.Minute})
			// issued a minute ago and valid for a minute and 4 s: due at once
			p.dp.serve(p.crl(t, 4*time.Second))
			for _, path := range []string{"/a.crl", "/b.crl"} {
				l, err := p.root.Issue(devpki.LeafTemplate{CommonName: "peer" + path, CRLDistributionPoints: []string{p.dp.URL + path}})
				if err != nil {
					t.Fatal(err)
				}
				if err := p.verify(l.Cert); err != nil {
					t.Fatalf("peer naming %s: %v", path, err)
				}
			}
			arrived, release := make(chan struct{}, 2), make(chan struct{})
			p.dp.set(func() { p.dp.arrived, p.dp.release = arrived, release })
			p.dp.serve(p.crl(t, time.Hour)) // what the refreshes get: not due again
			var once sync.Once
			unblock := func() { once.Do(func() { close(release) }) }
			t.Cleanup(unblock)
			done := trigger(p)
			for i := range 2 {
				select {
				case <-arrived:
				case <-time.After(20 * time.Second):
					t.Fatalf("%d of 2 refreshes in flight after 20 s: the distribution points are fetched one after another", i)
				}
			}
			unblock()
			if done != nil {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
