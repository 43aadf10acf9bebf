package certs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchOptions tunes Watch.
type WatchOptions struct {
	Interval time.Duration                           // periodic re-check; zero means 30s
	Debounce time.Duration                           // quiet time after events; zero means 150ms
	OnReload func(s *Store, changed bool, err error) // called after every reload attempt; nil ignores
	// OnWatchError is called with problems of the watch itself: a watched
	// folder that cannot be watched again, an fsnotify error. Watch keeps
	// going (the periodic re-check still reloads); nil ignores them.
	OnWatchError func(err error)
}

// DefaultReloadInterval is how often Watch re-checks its files when
// WatchOptions.Interval is zero; the cluster file's reload_interval
// defaults to it too.
const DefaultReloadInterval = 30 * time.Second

func (o WatchOptions) interval() time.Duration {
	if o.Interval <= 0 {
		return DefaultReloadInterval
	}
	return o.Interval
}

func (o WatchOptions) debounce() time.Duration {
	if o.Debounce <= 0 {
		return 150 * time.Millisecond
	}
	return o.Debounce
}

// maxDebounceWaits bounds how long a steady stream of events can postpone
// a reload, in multiples of the debounce time.
const maxDebounceWaits = 10

// Watch reloads stores when their files change until ctx ends, then
// returns nil. It watches the parent folder of every configured file and
// the ssl_capath/ssl_crlpath folders themselves (never a file's inode, so
// that writes in place, renames over the file, delete-and-recreate and
// Kubernetes "..data" symlink swaps are all seen), waits for Debounce of
// quiet, and reloads only the stores concerned. Every Interval it reloads
// all stores (a no-op when nothing changed) and watches folders again
// that had disappeared. Watch runs in the caller's goroutine and leaves
// none behind; it fails only when the watch cannot be set up.
func Watch(ctx context.Context, stores []*Store, opts WatchOptions) error {
	w, err := NewWatcher(stores, opts)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// Watcher is a Watch set up and not yet running: its folders are watched
// from NewWatcher on, so a change made after NewWatcher returns is never
// missed, even before Run starts.
type Watcher struct{ loop *watchLoop }

// NewWatcher sets up the watch of Watch: every folder of the stores is
// watched when it returns; Run releases it when its context ends.
func NewWatcher(stores []*Store, opts WatchOptions) (*Watcher, error) {
	plan, err := newWatchPlan(stores)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch certificate files: %w", err)
	}
	for _, dir := range plan.order {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch certificate folder %s: %w", dir, err)
		}
	}
	return &Watcher{loop: &watchLoop{plan: plan, w: w, stores: stores, opts: opts, pending: make(map[*Store]bool), missing: make(map[string]bool)}}, nil
}

// Run reloads as Watch does until ctx ends, then closes the watch.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.loop.w.Close()
	return w.loop.run(ctx)
}

// watchLoop is the state of one Watch call.
type watchLoop struct {
	plan    *watchPlan
	w       *fsnotify.Watcher
	stores  []*Store
	opts    WatchOptions
	pending map[*Store]bool // stores to reload when the debounce timer fires
	since   time.Time       // when the first pending event arrived
	missing map[string]bool // watched folders currently gone
}

func (l *watchLoop) run(ctx context.Context) error {
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	tick := time.NewTicker(l.opts.interval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.w.Events:
			if !ok {
				return errors.New("watch certificate files: fsnotify closed its event channel")
			}
			if _, isDir := l.plan.dirs[ev.Name]; isDir {
				l.ensureWatches() // a watched folder came or went
			}
			if l.mark(l.plan.affected(ev.Name)) {
				l.arm(debounce)
			}
		case err, ok := <-l.w.Errors:
			if !ok {
				return errors.New("watch certificate files: fsnotify closed its error channel")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				l.mark(l.stores) // events were lost: reload everything
				l.arm(debounce)
				continue
			}
			l.report(fmt.Errorf("watch certificate files: %w", err))
		case <-debounce.C:
			l.reloadPending()
		case <-tick.C:
			l.ensureWatches()
			l.mark(l.stores)
			l.reloadPending()
		}
	}
}

// mark adds stores to the pending set and reports whether any were given.
func (l *watchLoop) mark(stores []*Store) bool {
	if len(stores) == 0 {
		return false
	}
	if len(l.pending) == 0 {
		l.since = time.Now()
	}
	for _, s := range stores {
		l.pending[s] = true
	}
	return true
}

// arm (re)starts the debounce timer, unless events have already kept the
// reload waiting for maxDebounceWaits debounce periods.
func (l *watchLoop) arm(t *time.Timer) {
	d := l.opts.debounce()
	if time.Since(l.since) < maxDebounceWaits*d {
		t.Reset(d)
	}
}

// reloadPending reloads the pending stores, in the order Watch was given.
func (l *watchLoop) reloadPending() {
	for _, s := range l.stores {
		if !l.pending[s] {
			continue
		}
		delete(l.pending, s)
		changed, err := s.Reload()
		if l.opts.OnReload != nil {
			l.opts.OnReload(s, changed, err)
		}
	}
}

// ensureWatches watches again every planned folder that fsnotify no longer
// watches (it drops the watch when a folder is removed or renamed), and
// marks the stores of a folder that is back for reload.
func (l *watchLoop) ensureWatches() {
	watched := make(map[string]bool)
	for _, d := range l.w.WatchList() {
		watched[d] = true
	}
	for _, dir := range l.plan.order {
		if watched[dir] {
			continue
		}
		if err := l.w.Add(dir); err != nil {
			if !l.missing[dir] {
				l.missing[dir] = true
				l.report(fmt.Errorf("watch certificate folder %s again: %w", dir, err))
			}
			continue
		}
		delete(l.missing, dir)
		l.mark(l.plan.dirs[dir].stores)
	}
}

func (l *watchLoop) report(err error) {
	if l.opts.OnWatchError != nil {
		l.opts.OnWatchError(err)
	}
}
