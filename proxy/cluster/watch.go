package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileDebounce is how long WatchFile waits for quiet after a change of the
// cluster file before it calls back: editors and config management write
// a file in several steps.
const fileDebounce = 200 * time.Millisecond

// WatchFile calls changed after the cluster file at path changes, until
// ctx ends. It watches the file's folder, not the file, so writes in
// place, renames over it, delete-and-recreate and Kubernetes ConfigMap
// "..data" swaps are all seen; bursts of events make one call. It returns
// an error only when the watch cannot be set up, and runs changed in its
// own goroutine (the caller's).
func WatchFile(ctx context.Context, path string, changed func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch cluster file %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch cluster file %s: %w", path, err)
	}
	defer w.Close()
	dir, base := filepath.Dir(abs), filepath.Base(abs)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch cluster file folder %s: %w", dir, err)
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if name := filepath.Base(ev.Name); name == base || name == "..data" {
				debounce.Reset(fileDebounce)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return nil
			}
			debounce.Reset(fileDebounce) // events may be lost: look again
		case <-debounce.C:
			changed()
		}
	}
}
