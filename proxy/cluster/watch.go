package cluster

import (
	"crypto/sha256"
	"os"

	"github.com/groupwire/groupwire/certs"
)

// WatchFile sets up a watch of the cluster file at path; once it returns,
// no change is missed. Running the watcher calls changed, in the caller's
// goroutine, after each change of the file's contents, until its context
// ends. It is certs' watch, the one the key material uses: the file's
// folder is watched (so writes in place, renames over it and Kubernetes
// ConfigMap "..data" swaps are all seen), bursts of events make one
// reading, folders that went away are watched again, and the file is read
// again every certs.DefaultReloadInterval in case an event was lost. A
// rewrite with the same contents makes no call.
func WatchFile(path string, changed func()) (*certs.Watcher, error) {
	f := &watchedFile{path: path}
	_, _ = f.Reload() // the contents now; a file that cannot be read yet counts as changed once it can
	return certs.NewWatcher([]*watchedFile{f}, certs.WatchOptions[*watchedFile]{
		OnReload: func(_ *watchedFile, didChange bool, err error) {
			if err == nil && didChange {
				changed()
			}
		},
	})
}

// watchedFile is the cluster file as certs.Watcher sees it.
type watchedFile struct {
	path string
	sum  [sha256.Size]byte // of the contents last read
}

func (f *watchedFile) Name() string                  { return "cluster file " + f.path }
func (f *watchedFile) Paths() (files, dirs []string) { return []string{f.path}, nil }

// Reload reads the file and reports whether its contents differ from the
// last reading.
func (f *watchedFile) Reload() (bool, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	if sum == f.sum {
		return false, nil
	}
	f.sum = sum
	return true, nil
}
