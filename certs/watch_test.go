package certs

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/groupwire/groupwire/certs/devpki"
)

// seenWithin bounds how soon a file change must reach Current(). It takes
// about 160 ms (150 ms of it the debounce); 5 s is 30 times that, for a
// loaded machine under -race, and still fails a watcher that missed the
// change (the periodic re-check in these tests is far longer).
const seenWithin = 5 * time.Second

// startWatch runs Watch in the background until the test ends, and checks
// that it returns nil once its context is cancelled.
func startWatch(t *testing.T, stores []*Store, opts WatchOptions[*Store]) {
	t.Helper()
	if opts.Debounce == 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.Interval == 0 {
		opts.Interval = time.Hour // only events count, unless a test says otherwise
	}
	// NewWatcher returns with every folder watched, so no change the test
	// makes from here on can be missed.
	w, err := NewWatcher(stores, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
}

// waitFor polls cond until it holds or seenWithin passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < seenWithin {
		if cond() {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not seen within %v", what, seenWithin)
}

func serialIs(st *Store, n int64) func() bool {
	return func() bool { return st.Current().Cert.Leaf.SerialNumber.Int64() == n }
}

func TestWatchSeesChanges(t *testing.T) {
	scenarios := []struct {
		name string
		// write writes the new pair; failedReload waits until a reload
		// has failed since the test began.
		write func(t *testing.T, dir string, cert, key []byte, failedReload func())
	}{
		{"in-place write", func(t *testing.T, dir string, cert, key []byte, _ func()) {
			writeFile(t, filepath.Join(dir, "cert.pem"), cert)
			writeFile(t, filepath.Join(dir, "key.pem"), key)
		}},
		{"write temp then rename", func(t *testing.T, dir string, cert, key []byte, _ func()) {
			for name, data := range map[string][]byte{"cert.pem": cert, "key.pem": key} {
				if err := devpki.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"delete then recreate", func(t *testing.T, dir string, cert, key []byte, failedReload func()) {
			for _, name := range []string{"cert.pem", "key.pem"} {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			failedReload() // the watch saw the files go, and kept the old pair
			writeFile(t, filepath.Join(dir, "cert.pem"), cert)
			writeFile(t, filepath.Join(dir, "key.pem"), key)
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			p := newTestPKI(t)
			st, err := NewStore("test", p.writeBasic(t))
			if err != nil {
				t.Fatal(err)
			}
			var reloads, failures atomic.Int32
			startWatch(t, []*Store{st}, WatchOptions[*Store]{OnReload: func(s *Store, changed bool, err error) {
				reloads.Add(1)
				if err != nil {
					failures.Add(1)
				}
			}})
			next := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-2", Serial: big.NewInt(0x2002)})
			sc.write(t, p.dir, next.ChainPEM, next.KeyPEM, func() {
				waitFor(t, "a failed reload", func() bool { return failures.Load() > 0 })
			})
			waitFor(t, "new serial 0x2002", serialIs(st, 0x2002))
			t.Logf("%d reloads, %d failed", reloads.Load(), failures.Load())
		})
	}
}

// TestWatchKubernetesDataSwap builds the layout kubelet makes for a Secret
// volume and swaps it the way kubelet does.
func TestWatchKubernetesDataSwap(t *testing.T) {
	p := newTestPKI(t)
	dir := p.path("secret")
	writeVersion := func(version string, leaf *devpki.Leaf) {
		writeFile(t, filepath.Join(dir, version, "ca.pem"), p.inter.ChainPEM())
		writeFile(t, filepath.Join(dir, version, "cert.pem"), leaf.ChainPEM)
		writeFile(t, filepath.Join(dir, version, "key.pem"), leaf.KeyPEM)
	}
	writeVersion("..2026_11_27_10_00_00.1", p.leaf)
	must(t, os.Symlink("..2026_11_27_10_00_00.1", filepath.Join(dir, "..data")))
	for _, name := range []string{"ca.pem", "cert.pem", "key.pem"} {
		must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	}
	st, err := NewStore("k8s", Source{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, []*Store{st}, WatchOptions[*Store]{})

	next := p.issue(t, devpki.LeafTemplate{CommonName: "mysql-2", Serial: big.NewInt(0x3002)})
	writeVersion("..2026_11_27_11_00_00.2", next)
	must(t, os.Symlink("..2026_11_27_11_00_00.2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..2026_11_27_10_00_00.1")))
	waitFor(t, "new serial 0x3002", serialIs(st, 0x3002))
}

// TestWatchCRLPathAndOnlyAffectedStores adds a CRL to an ssl_crlpath folder
// and checks that only the store using it reloads.
func TestWatchCRLPathAndOnlyAffectedStores(t *testing.T) {
	p := newTestPKI(t)
	crlDir := p.path("crl.d")
	writeFile(t, filepath.Join(crlDir, "root.crl"), crl(t, p.root))
	src := p.writeBasic(t)
	src.CRLPath = crlDir
	withCRL, err := NewStore("with crl", src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.path("other/ca.pem"), p.root.CertPEM)
	other, err := NewStore("other", Source{CA: p.path("other/ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	reloaded := map[string]int{}
	startWatch(t, []*Store{withCRL, other}, WatchOptions[*Store]{OnReload: func(s *Store, changed bool, err error) {
		mu.Lock()
		reloaded[s.Name()]++
		mu.Unlock()
	}})
	must(t, devpki.WriteFile(filepath.Join(crlDir, "inter.crl"), crl(t, p.inter, big.NewInt(0x1002)), 0o644))
	waitFor(t, "second CRL", func() bool { return len(withCRL.Current().CRLs.Info()) == 2 })
	var rev *RevokedError
	if _, err := withCRL.Current().VerifyPeer(p.chainOf(p.leaf.Cert)[:1], nil, time.Now()); !errors.As(err, &rev) {
		t.Errorf("after the CRL landed: %v, want revoked", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if reloaded["other"] != 0 {
		t.Errorf("unrelated store reloaded %d times", reloaded["other"])
	}
}

// TestWatchFolderComesBack removes a watched ssl_crlpath folder and
// recreates it: the event on the folder itself (its parent is watched for
// ssl_cert) must make Watch watch it again, without waiting for the
// periodic check.
func TestWatchFolderComesBack(t *testing.T) {
	p := newTestPKI(t)
	crlDir := p.path("crl.d")
	writeFile(t, filepath.Join(crlDir, "root.crl"), crl(t, p.root))
	src := p.writeBasic(t)
	src.CRLPath = crlDir
	st, err := NewStore("crlpath", src)
	if err != nil {
		t.Fatal(err)
	}
	var watchErrs, failed, ok atomic.Int32
	startWatch(t, []*Store{st}, WatchOptions[*Store]{
		OnWatchError: func(error) { watchErrs.Add(1) },
		OnReload: func(_ *Store, _ bool, err error) {
			if err != nil {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
		},
	})
	must(t, os.RemoveAll(crlDir))
	// The folder is gone: its watch is lost, and reloads fail until it is
	// back.
	waitFor(t, "the vanished folder reported", func() bool { return watchErrs.Load() > 0 && failed.Load() > 0 })
	before := ok.Load()
	writeFile(t, filepath.Join(crlDir, "root.crl"), crl(t, p.root))
	// A reload succeeds only once the folder is back, and the event that
	// brought it back re-added its watch first.
	waitFor(t, "a reload of the recreated folder", func() bool { return ok.Load() > before })
	must(t, devpki.WriteFile(filepath.Join(crlDir, "inter.crl"), crl(t, p.inter), 0o644))
	waitFor(t, "CRL in the recreated folder", func() bool { return len(st.Current().CRLs.Info()) == 2 })
	if watchErrs.Load() == 0 {
		t.Error("the vanished folder was not reported")
	}
}

// TestEnsureWatchesReaddsFolder drives the periodic path directly: a
// folder that vanished and came back without any event Watch could see is
// watched again and its stores are marked for reload.
func TestEnsureWatchesReaddsFolder(t *testing.T) {
	root := t.TempDir()
	crlDir := filepath.Join(root, "deep", "crl.d")
	must(t, os.MkdirAll(crlDir, 0o755))
	st := &Store{name: "s", src: Source{CRLPath: crlDir}}
	plan, err := newWatchPlan([]Watched{st})
	must(t, err)
	w, err := fsnotify.NewWatcher()
	must(t, err)
	defer w.Close()
	must(t, w.Add(crlDir))
	var reported []error
	l := &watchLoop{plan: plan, w: w, stores: []Watched{st}, pending: map[Watched]bool{}, missing: map[string]bool{},
		onWatchError: func(err error) { reported = append(reported, err) }}

	must(t, os.RemoveAll(filepath.Join(root, "deep")))
	waitFor(t, "watch dropped", func() bool { return len(w.WatchList()) == 0 })
	l.ensureWatches()
	l.ensureWatches()
	if len(reported) != 1 || !errors.Is(reported[0], os.ErrNotExist) {
		t.Errorf("reported %v, want one not-exist error", reported)
	}
	if l.pending[st] {
		t.Error("store marked while its folder is gone")
	}
	must(t, os.MkdirAll(crlDir, 0o755))
	l.ensureWatches()
	if got := w.WatchList(); len(got) != 1 || got[0] != crlDir {
		t.Errorf("WatchList = %v, want %s", got, crlDir)
	}
	if !l.pending[st] || l.missing[crlDir] {
		t.Errorf("pending=%v missing=%v after the folder came back", l.pending, l.missing)
	}
}

func TestWatchPeriodicRecheck(t *testing.T) {
	p := newTestPKI(t)
	st, err := NewStore("periodic", p.writeBasic(t))
	if err != nil {
		t.Fatal(err)
	}
	var unchanged atomic.Int32
	startWatch(t, []*Store{st}, WatchOptions[*Store]{Interval: 30 * time.Millisecond, OnReload: func(s *Store, changed bool, err error) {
		if !changed && err == nil {
			unchanged.Add(1)
		}
	}})
	waitFor(t, "two no-op periodic reloads", func() bool { return unchanged.Load() >= 2 })
}

func TestWatchPlanAffected(t *testing.T) {
	a := &Store{name: "a", src: Source{Cert: "/c/a.pem", Key: "/c/a-key.pem", CRLPath: "/crl"}}
	b := &Store{name: "b", src: Source{CA: "/c/ca.pem"}}
	plan, err := newWatchPlan([]Watched{a, b})
	if err != nil {
		t.Fatal(err)
	}
	names := func(ss []Watched) map[string]bool {
		m := map[string]bool{}
		for _, s := range ss {
			m[s.Name()] = true
		}
		return m
	}
	cases := map[string]string{
		"/c/a.pem":     "a",
		"/c/ca.pem":    "b",
		"/c/..data":    "ab",
		"/c/other.pem": "",
		"/crl/x.r0":    "a",
		"/crl":         "a",
		"/c":           "ab",
	}
	for ev, want := range cases {
		got := names(plan.affected(ev))
		if len(got) != len(want) {
			t.Errorf("affected(%s) = %v, want %q", ev, got, want)
		}
		for _, r := range want {
			if !got[string(r)] {
				t.Errorf("affected(%s) = %v, want %q", ev, got, want)
			}
		}
	}
	if len(plan.order) != 2 {
		t.Errorf("watching %v, want /c and /crl", plan.order)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
