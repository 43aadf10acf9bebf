package certs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watched is what Watch keeps up to date: a Store, or anything else
// loaded from files (the cluster file). Paths names the files and the
// folders whose every entry counts; Reload loads them again, reporting
// whether anything changed, and keeps what it had on an error.
type Watched interface {
	Name() string
	Paths() (files, dirs []string)
	Reload() (changed bool, err error)
}

// WatchOptions tunes Watch.
type WatchOptions[T Watched] struct {
	Interval time.Duration                      // periodic re-check; zero means 30s
	Debounce time.Duration                      // quiet time after events; zero means 150ms
	OnReload func(w T, changed bool, err error) // called after every reload attempt; nil ignores
	// OnWatchError is called with problems of the watch itself: a watched
	// folder that cannot be watched again, an fsnotify error. Watch keeps
	// going (the periodic re-check still reloads); nil ignores them.
	OnWatchError func(err error)
}

// DefaultReloadInterval is how often Watch re-checks its files when
// WatchOptions.Interval is zero; the cluster file's reload_interval
// defaults to it too.
const DefaultReloadInterval = 30 * time.Second

func (o WatchOptions[T]) interval() time.Duration {
	if o.Interval <= 0 {
		return DefaultReloadInterval
	}
	return o.Interval
}

func (o WatchOptions[T]) debounce() time.Duration {
	if o.Debounce <= 0 {
		return 150 * time.Millisecond
	}
	return o.Debounce
}

// maxDebounceWaits bounds how long a steady stream of events can postpone
// a reload, in multiples of the debounce time.
const maxDebounceWaits = 10

// Watch reloads each of stores (Stores, or any other Watched) when its
// files change until ctx ends, then returns nil. It watches the parent
// folder of every configured file and the ssl_capath/ssl_crlpath folders
// themselves (never a file's inode, so
// that writes in place, renames over the file, delete-and-recreate and
// Kubernetes "..data" symlink swaps are all seen), waits for Debounce of
// quiet, and reloads only the stores concerned. Every Interval it reloads
// all stores (a no-op when nothing changed) and watches folders again
// that had disappeared. Watch runs in the caller's goroutine and leaves
// none behind; it fails only when the watch cannot be set up.
func Watch[T Watched](ctx context.Context, stores []T, opts WatchOptions[T]) error {
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
func NewWatcher[T Watched](targets []T, opts WatchOptions[T]) (*Watcher, error) {
	stores := make([]Watched, len(targets))
	for i, t := range targets {
		stores[i] = t
	}
	plan, err := newWatchPlan(stores)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch files: %w", err)
	}
	for _, dir := range plan.order {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch folder %s: %w", dir, err)
		}
	}
	l := &watchLoop{plan: plan, w: w, stores: stores, interval: opts.interval(), debounce: opts.debounce(),
		onWatchError: opts.OnWatchError, pending: make(map[Watched]bool), missing: make(map[string]bool)}
	if opts.OnReload != nil {
		l.onReload = func(w Watched, changed bool, err error) { opts.OnReload(w.(T), changed, err) }
	}
	return &Watcher{loop: l}, nil
}

// Run reloads as Watch does until ctx ends, then closes the watch.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.loop.w.Close()
	return w.loop.run(ctx)
}

// watchLoop is the state of one Watch call.
type watchLoop struct {
	plan         *watchPlan
	w            *fsnotify.Watcher
	stores       []Watched
	interval     time.Duration
	debounce     time.Duration
	onReload     func(w Watched, changed bool, err error) // nil ignores
	onWatchError func(err error)                          // nil ignores
	pending      map[Watched]bool                         // to reload when the debounce timer fires
	since        time.Time                                // when the first pending event arrived
	missing      map[string]bool                          // watched folders currently gone
}

func (l *watchLoop) run(ctx context.Context) error {
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.w.Events:
			if !ok {
				return errors.New("watch files: fsnotify closed its event channel")
			}
			if _, isDir := l.plan.dirs[ev.Name]; isDir {
				l.ensureWatches() // a watched folder came or went
			}
			if l.mark(l.plan.affected(ev.Name)) {
				l.arm(debounce)
			}
		case err, ok := <-l.w.Errors:
			if !ok {
				return errors.New("watch files: fsnotify closed its error channel")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				l.mark(l.stores) // events were lost: reload everything
				l.arm(debounce)
				continue
			}
			l.report(fmt.Errorf("watch files: %w", err))
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
func (l *watchLoop) mark(stores []Watched) bool {
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
	if time.Since(l.since) < maxDebounceWaits*l.debounce {
		t.Reset(l.debounce)
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
		if l.onReload != nil {
			l.onReload(s, changed, err)
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
				l.report(fmt.Errorf("watch folder %s again: %w", dir, err))
			}
			continue
		}
		delete(l.missing, dir)
		l.mark(l.plan.dirs[dir].stores)
	}
}

func (l *watchLoop) report(err error) {
	if l.onWatchError != nil {
		l.onWatchError(err)
	}
}
