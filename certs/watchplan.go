package certs

import (
	"fmt"
	"path/filepath"
	"slices"
)

// k8sDataLink is the symlink Kubernetes swaps atomically when it updates a
// Secret or ConfigMap volume; the user-facing names never change.
const k8sDataLink = "..data"

// watchPlan says which folders to watch and which stores an event
// concerns.
type watchPlan struct {
	dirs  map[string]*watchDir // by absolute path
	order []string             // dirs' keys, in first-seen order
}

// watchDir is one watched folder.
type watchDir struct {
	whole  []Watched            // stores for which any event here counts (capath, crlpath)
	files  map[string][]Watched // stores by configured basename in this folder
	stores []Watched            // every store with anything here
}

func newWatchPlan(stores []Watched) (*watchPlan, error) {
	p := &watchPlan{dirs: make(map[string]*watchDir)}
	for _, s := range stores {
		files, dirs := s.Paths()
		for _, f := range files {
			abs, err := filepath.Abs(f)
			if err != nil {
				return nil, fmt.Errorf("watch %s file %s: %w", s.Name(), f, err)
			}
			wd := p.dir(filepath.Dir(abs), s)
			base := filepath.Base(abs)
			if !slices.Contains(wd.files[base], s) {
				wd.files[base] = append(wd.files[base], s)
			}
		}
		for _, d := range dirs {
			abs, err := filepath.Abs(d)
			if err != nil {
				return nil, fmt.Errorf("watch %s folder %s: %w", s.Name(), d, err)
			}
			wd := p.dir(abs, s)
			if !slices.Contains(wd.whole, s) {
				wd.whole = append(wd.whole, s)
			}
		}
	}
	return p, nil
}

// dir returns the entry for path, creating it, and records s in it.
func (p *watchPlan) dir(path string, s Watched) *watchDir {
	wd, ok := p.dirs[path]
	if !ok {
		wd = &watchDir{files: make(map[string][]Watched)}
		p.dirs[path] = wd
		p.order = append(p.order, path)
	}
	if !slices.Contains(wd.stores, s) {
		wd.stores = append(wd.stores, s)
	}
	return wd
}

// affected returns the stores an event on name concerns: anything inside
// a capath/crlpath folder, a configured file's name or "..data" in a
// parent folder, or a watched folder itself. It may hold duplicates.
func (p *watchPlan) affected(name string) []Watched {
	var out []Watched
	if wd, ok := p.dirs[filepath.Dir(name)]; ok {
		out = append(out, wd.whole...)
		base := filepath.Base(name)
		if base == k8sDataLink {
			out = append(out, wd.stores...)
		} else {
			out = append(out, wd.files[base]...)
		}
	}
	if wd, ok := p.dirs[name]; ok {
		out = append(out, wd.stores...)
	}
	return out
}
