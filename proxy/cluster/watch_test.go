package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchFileSeesEditsRenamesAndDataSwaps: a write in place, a rename
// over the file and a Kubernetes ConfigMap "..data" symlink swap each make
// one call; a change of another file in the folder makes none.
func TestWatchFileSeesEditsRenamesAndDataSwaps(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The ConfigMap layout: cluster.yaml → ..data/cluster.yaml, ..data → ..v1.
	must(os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "..v1", "cluster.yaml"), []byte("v1"), 0o644))
	must(os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(os.Symlink("..data/cluster.yaml", filepath.Join(dir, "cluster.yaml")))
	calls := make(chan struct{}, 16)
	w, err := WatchFile(filepath.Join(dir, "cluster.yaml"), func() { calls <- struct{}{} })
	must(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	expect := func(what string, want bool) {
		t.Helper()
		// The debounce is 150 ms; 5 s covers a loaded machine.
		select {
		case <-calls:
			if !want {
				t.Errorf("%s made a call", what)
			}
		case <-time.After(map[bool]time.Duration{true: 5 * time.Second, false: time.Second}[want]):
			if want {
				t.Errorf("%s made no call", what)
			}
		}
	}
	must(os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("x"), 0o644))
	expect("another file", false)
	must(os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "..v2", "cluster.yaml"), []byte("v2"), 0o644))
	must(os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	expect("the ..data swap", true)
	must(os.Remove(filepath.Join(dir, "cluster.yaml")))
	must(os.WriteFile(filepath.Join(dir, "cluster.yaml.tmp"), []byte("v3"), 0o644))
	must(os.Rename(filepath.Join(dir, "cluster.yaml.tmp"), filepath.Join(dir, "cluster.yaml")))
	expect("a rename over the file", true)
	must(os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte("v4"), 0o644))
	expect("a write in place", true)
	must(os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte("v4"), 0o644))
	expect("a rewrite with the same contents", false)
}
