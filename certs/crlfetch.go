package certs

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// CRL fetching (ssl_crl_fetch): the CRL of every certificate of a peer's
// chain comes from the HTTP distribution point the certificate names. A
// fetched CRL is verified against the certificate's issuer (ParseFetchedCRL),
// cached until its nextUpdate and refreshed ahead of it by RunCRLFetch;
// a refresh that fails keeps the last good CRL, retried with back-off.
// A handshake fetches only a distribution point it has never had a CRL
// from, one fetch per URL and issuer at a time, and not while a failed
// fetch backs off.

// Defaults of fetching; CRLFetchOptions overrides them.
const (
	DefaultCRLFetchTimeout  = 5 * time.Second
	DefaultCRLFetchMaxBytes = 16 << 20
	maxFetchBackoff         = 5 * time.Minute
	minRefreshGap           = time.Second // a CRL valid for less is not refreshed more often
	maxFetchEntries         = 1024        // distribution point and issuer pairs remembered
	refreshParallel         = 8           // fetches at once, on SIGHUP and when due
)

// CRLFetchOptions tunes ssl_crl_fetch; zero fields take the defaults.
type CRLFetchOptions struct {
	Timeout  time.Duration // one fetch, connect to last byte
	MaxBytes int64         // the largest CRL accepted
	Client   *http.Client  // nil: a client that follows no redirect
}

// crlFetcher fetches, verifies, caches and refreshes the CRLs of
// distribution points. Its methods are safe for concurrent use.
type crlFetcher struct {
	opts     CRLFetchOptions
	failOpen bool
	client   *http.Client
	flight   singleflight.Group
	changed  chan struct{} // cap 1: a CRL in force changed
	wake     chan struct{} // cap 1: an entry was added or failed
	onSwap   func()        // the store's: a new snapshot (empty verify cache)
	opened   atomic.Uint64 // verifications let through by FailOpen

	mu      sync.Mutex
	entries map[fetchKey]*fetchEntry // guarded by mu
}

// fetchKey names one distribution point of one issuer.
type fetchKey struct{ url, issuerKey string }

// fetchEntry is one distribution point's state; guarded by crlFetcher.mu.
type fetchEntry struct {
	key        fetchKey
	issuer     *x509.Certificate
	crl        *FetchedCRL // in force; nil until a fetch succeeds
	fetchedAt  time.Time   // when crl was fetched
	lastTry    time.Time
	lastErr    error // of the latest fetch; nil after a success
	failures   int   // consecutive failures, for the back-off
	refreshing bool  // run has a refresh of it started or waiting for a slot
	fetches    uint64
	failed     uint64
}

func newCRLFetcher(opts CRLFetchOptions, failOpen bool) *crlFetcher {
	f := &crlFetcher{
		failOpen: failOpen,
		changed:  make(chan struct{}, 1), wake: make(chan struct{}, 1),
		entries: make(map[fetchKey]*fetchEntry),
	}
	f.configure(opts)
	return f
}

// configure sets the fetch's options, defaults filled in; it is called
// before the fetcher is used.
func (f *crlFetcher) configure(opts CRLFetchOptions) {
	f.opts, f.client = opts, opts.Client
	if f.client == nil {
		f.client = &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return fmt.Errorf("redirect to %s refused: a CRL is fetched from the URL its certificate names", req.URL)
		}}
	}
	if f.opts.Timeout <= 0 {
		f.opts.Timeout = DefaultCRLFetchTimeout
	}
	if f.opts.MaxBytes <= 0 {
		f.opts.MaxBytes = DefaultCRLFetchMaxBytes
	}
}

// lookup returns the CRL in force for c, issued by issuer, from the first
// of c's distribution points that has one, fetching it now if none was
// ever had. It returns nothing (and no error) when c names no http://
// distribution point.
func (f *crlFetcher) lookup(c, issuer *x509.Certificate, now time.Time) (*crlIndex, error) {
	var errs []error
	for _, u := range DistributionPoints(c) {
		crl, err := f.get(fetchKey{u, string(issuer.RawSubjectPublicKeyInfo)}, issuer, now)
		if crl != nil {
			return crl.idx, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// held returns the CRL lookup would use for c now, without fetching:
// that of the first of urls with one in force, or nil. The caller holds
// f.mu.
func (f *crlFetcher) held(urls []string, issuer *x509.Certificate) *crlIndex {
	for _, u := range urls {
		if e := f.entries[fetchKey{u, string(issuer.RawSubjectPublicKeyInfo)}]; e != nil && e.crl != nil {
			return e.crl.idx
		}
	}
	return nil
}

// get returns the entry's CRL in force, fetching it first when there is
// none and no failed fetch is backing off.
func (f *crlFetcher) get(key fetchKey, issuer *x509.Certificate, now time.Time) (*FetchedCRL, error) {
	e, err := f.entry(key, issuer)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	crl, lastErr, retry := e.crl, e.lastErr, e.retryAt()
	f.mu.Unlock()
	if crl != nil {
		return crl, nil // current or not: Check judges its dates
	}
	if lastErr != nil && now.Before(retry) {
		return nil, fmt.Errorf("%w (next try in %s)", lastErr, retry.Sub(now).Round(time.Second))
	}
	return f.refresh(context.Background(), e)
}

// entry returns the entry of key, made if new.
func (f *crlFetcher) entry(key fetchKey, issuer *x509.Certificate) (*fetchEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.entries[key]; ok {
		return e, nil
	}
	if len(f.entries) >= maxFetchEntries {
		return nil, fmt.Errorf("CRL distribution point %s: %d distribution points are already tracked", key.url, maxFetchEntries)
	}
	e := &fetchEntry{key: key, issuer: issuer}
	f.entries[key] = e
	return e, nil
}

// validUntil is how long a verification of chain may be remembered: until
// the first nextUpdate of the fetched CRLs it was checked against, or not
// at all (now) when a certificate that names distribution points has no
// CRL from them in force (it failed open).
func (f *crlFetcher) validUntil(chain []*x509.Certificate) time.Time {
	now := time.Now()
	var until time.Time
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i+1 < len(chain); i++ {
		urls := DistributionPoints(chain[i])
		if len(urls) == 0 {
			continue // checked against files only
		}
		idx := f.held(urls, chain[i+1])
		if idx == nil {
			return now
		}
		if until.IsZero() || idx.nextUpdate.Before(until) {
			until = idx.nextUpdate
		}
	}
	return until
}

// refresh fetches the entry's CRL, one fetch per entry at a time (callers
// that come while one runs share its result), and puts it in force when
// it passes and is not older than the one held.
func (f *crlFetcher) refresh(ctx context.Context, e *fetchEntry) (*FetchedCRL, error) {
	v, err, _ := f.flight.Do(e.key.url+"\x00"+e.key.issuerKey, func() (any, error) {
		crl, err := f.fetch(ctx, e)
		return crl, f.record(e, crl, err)
	})
	if err != nil {
		return nil, err
	}
	return v.(*FetchedCRL), nil
}

// fetch downloads and verifies the entry's CRL.
func (f *crlFetcher) fetch(ctx context.Context, e *fetchEntry) (*FetchedCRL, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	data, err := f.download(ctx, e.key.url)
	if err != nil {
		return nil, err
	}
	return ParseFetchedCRL(data, e.key.url, e.issuer, time.Now())
}

// download GETs url, refusing a status other than 200 and a body over
// MaxBytes.
func (f *crlFetcher) download(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(data)) > f.opts.MaxBytes {
		return nil, fmt.Errorf("CRL larger than %d bytes", f.opts.MaxBytes)
	}
	return data, nil
}

// record notes a fetch's outcome in its entry and returns the error to
// report: the fetch's own, or a refusal of a CRL older than the one in
// force. A new CRL in force swaps the store's snapshot and signals
// changed; a failure wakes RunCRLFetch to schedule the retry.
func (f *crlFetcher) record(e *fetchEntry, crl *FetchedCRL, err error) error {
	f.mu.Lock()
	now := time.Now()
	e.fetches++
	e.lastTry = now
	if err == nil && e.crl != nil && crl.idx.thisUpdate.Before(e.crl.idx.thisUpdate) {
		err = fmt.Errorf("CRL thisUpdate %s is older than that of the CRL in force (%s); an old CRL is not taken back",
			crl.idx.thisUpdate.UTC().Format(time.RFC3339), e.crl.idx.thisUpdate.UTC().Format(time.RFC3339))
	}
	changed := false
	if err != nil {
		e.failed++
		e.failures++
		err = fmt.Errorf("fetch CRL %s of %q: %w", e.key.url, e.issuer.Subject, err)
		e.lastErr = err
	} else {
		changed = e.crl == nil || e.crl.digest != crl.digest
		e.crl, e.fetchedAt, e.lastErr, e.failures = crl, now, nil, 0
	}
	f.mu.Unlock()
	if changed {
		if f.onSwap != nil {
			f.onSwap()
		}
		signal(f.changed)
	} else if err != nil {
		signal(f.wake)
	}
	return err
}

// signal sends on a channel of capacity 1 without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// retryAt is when the entry is next fetched: ahead of its CRL's
// nextUpdate (at three quarters of its validity), or after a failure at
// the back-off (1 s doubling to 5 min). The caller holds crlFetcher.mu.
func (e *fetchEntry) retryAt() time.Time {
	if e.lastErr != nil {
		backoff := min(time.Second<<min(e.failures-1, 16), maxFetchBackoff)
		return e.lastTry.Add(backoff)
	}
	if e.crl == nil {
		return e.lastTry // never fetched: due now
	}
	this, next := e.crl.idx.thisUpdate, e.crl.idx.nextUpdate
	at := this.Add(next.Sub(this) * 3 / 4)
	return maxTime(at, e.fetchedAt.Add(minRefreshGap))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// run refreshes every entry when it is due until ctx ends, calling
// onChange after a CRL in force changed and onError with each failed
// refresh. Each refresh runs on its own, up to refreshParallel at once, so
// that one distribution point that hangs until its timeout holds up no
// other; run returns once they have all ended.
func (f *crlFetcher) run(ctx context.Context, onChange func(), onError func(error)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, refreshParallel)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := f.startDue(ctx, &wg, func(e *fetchEntry) { f.refreshDue(ctx, e, slots, onError) })
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-f.changed:
			if onChange != nil {
				onChange()
			}
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// startDue starts refresh (in wg) for every entry that is due and not
// already being refreshed, and returns when the next of the others falls
// due (at most a minute ahead, so that new entries are seen).
func (f *crlFetcher) startDue(ctx context.Context, wg *sync.WaitGroup, refresh func(*fetchEntry)) time.Time {
	now := time.Now()
	next := now.Add(time.Minute)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.entries {
		switch at := e.retryAt(); {
		case e.refreshing:
		case at.After(now):
			next = minTime(next, at)
		case ctx.Err() == nil:
			e.refreshing = true
			wg.Go(func() { refresh(e) })
		}
	}
	return next
}

// refreshDue refreshes e once one of slots is free, reports a failure to
// onError, and wakes run to schedule e's next refresh.
func (f *crlFetcher) refreshDue(ctx context.Context, e *fetchEntry, slots chan struct{}, onError func(error)) {
	defer func() {
		f.mu.Lock()
		e.refreshing = false
		f.mu.Unlock()
		signal(f.wake)
	}()
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-ctx.Done():
		return
	}
	if _, err := f.refresh(ctx, e); err != nil && onError != nil && ctx.Err() == nil {
		onError(err)
	}
}

// snapshotEntries returns the entries, for iterating without the lock.
func (f *crlFetcher) snapshotEntries() []*fetchEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*fetchEntry, 0, len(f.entries))
	for _, e := range f.entries {
		out = append(out, e)
	}
	return out
}

// refreshAll fetches every entry now (SIGHUP), up to refreshParallel at
// once so that one distribution point that hangs until its timeout does
// not hold the others up, and returns the failures.
func (f *crlFetcher) refreshAll(ctx context.Context) error {
	entries := f.snapshotEntries()
	errs := make([]error, len(entries))
	var g errgroup.Group
	g.SetLimit(refreshParallel)
	for i, e := range entries {
		g.Go(func() error {
			_, errs[i] = f.refresh(ctx, e)
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no error: each keeps its own in errs
	return errors.Join(errs...)
}

// FetchedCRLInfo describes one distribution point of one issuer, for
// metrics, the status page and check.
type FetchedCRLInfo struct {
	URL        string
	Issuer     string    // subject of the CA whose CRL it is
	ThisUpdate time.Time // of the CRL in force; zero when none
	NextUpdate time.Time
	FetchedAt  time.Time // when the CRL in force was fetched
	Revoked    int
	Fetches    uint64 // attempts, successful or not
	Failures   uint64
	LastError  string // of the latest attempt; "" after a success
}

// info lists the entries, sorted by URL.
func (f *crlFetcher) info() []FetchedCRLInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FetchedCRLInfo, 0, len(f.entries))
	for _, e := range f.entries {
		i := FetchedCRLInfo{URL: e.key.url, Issuer: e.issuer.Subject.String(), FetchedAt: e.fetchedAt, Fetches: e.fetches, Failures: e.failed}
		if e.crl != nil {
			i.ThisUpdate, i.NextUpdate, i.Revoked = e.crl.idx.thisUpdate, e.crl.idx.nextUpdate, len(e.crl.idx.revoked)
		}
		if e.lastErr != nil {
			i.LastError = e.lastErr.Error()
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b FetchedCRLInfo) int { return cmp.Compare(a.URL+a.Issuer, b.URL+b.Issuer) })
	return out
}

// crlDigest identifies a CRL's content.
func crlDigest(der []byte) [32]byte { return sha256.Sum256(der) }

// FetchCRL fetches and verifies issuer's CRL from url once, as check
// does to show whether a distribution point answers.
func FetchCRL(ctx context.Context, url string, issuer *x509.Certificate, opts CRLFetchOptions) (FetchedCRLInfo, error) {
	f := newCRLFetcher(opts, false)
	e, err := f.entry(fetchKey{url, string(issuer.RawSubjectPublicKeyInfo)}, issuer)
	if err != nil {
		return FetchedCRLInfo{}, err
	}
	_, err = f.refresh(ctx, e)
	return f.info()[0], err
}
