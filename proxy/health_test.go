package proxy

import (
	"errors"
	"testing"
	"time"
)

// TestPairPaths: a pair is through once a probe or a link proves it, direct
// while the peer has no sidecar in an open onboarding window, and down
// once that window closes with the peer still without one.
func TestPairPaths(t *testing.T) {
	k := pairKey{"m2", "group"}
	b := newHealthBoard([]pairKey{k})
	path := func() string { return b.all()[0].path() }
	if got := path(); got != PathDown {
		t.Fatalf("a pair never probed: path %q, want %q", got, PathDown)
	}
	refused := errors.New("connection refused")
	b.probed("m2", "group", time.Now(), 0, nil, refused, true)
	if got := path(); got != PathDirect {
		t.Fatalf("refused in an open window: path %q, want %q", got, PathDirect)
	}
	b.seen("m2", "group", nil)
	if got := path(); got != PathThrough {
		t.Fatalf("a link set up: path %q, want %q", got, PathThrough)
	}
	b.direct("m2", "group")
	if got := path(); got != PathDirect {
		t.Fatalf("a direct link made: path %q, want %q", got, PathDirect)
	}
	b.clearDirect(func(pairKey) bool { return false })
	if got := path(); got != PathDown {
		t.Fatalf("the window closed: path %q, want %q", got, PathDown)
	}
	b.probed("m2", "group", time.Now(), 0, nil, refused, false)
	if got := path(); got != PathDown {
		t.Fatalf("refused with the window closed: path %q, want %q", got, PathDown)
	}
}
