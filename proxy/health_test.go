package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/proxy/cluster"
	"github.com/groupwire/groupwire/transport"
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

// TestOnlyARefusedDialGoesDirect: in an open window, a dial that found no
// listener at the peer's link port goes direct; a timeout, a failed
// handshake or a refusal by the peer's sidecar never does, and nothing
// goes direct once the window is closed.
func TestOnlyARefusedDialGoesDirect(t *testing.T) {
	open := &outboundRoute{Route: cluster.Route{Peer: "m2", Channel: "group", Direct: "10.0.0.2:4567"}}
	closed := &outboundRoute{Route: cluster.Route{Peer: "m2", Channel: "group"}}
	refused := fmt.Errorf("dial m2 at 10.0.0.2:24900: %w", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	if !open.goesDirect(refused) {
		t.Error("a refused dial in an open window does not go direct")
	}
	if closed.goesDirect(refused) {
		t.Error("a refused dial goes direct with the window closed")
	}
	for _, err := range []error{
		nil,
		fmt.Errorf("dial: %w", os.ErrDeadlineExceeded),
		fmt.Errorf("link to m2: %w", &transport.RefusedError{Peer: "m2"}),
		errors.New("tls: bad certificate"),
		fmt.Errorf("dial: %w", syscall.EHOSTUNREACH),
	} {
		if open.goesDirect(err) {
			t.Errorf("%v goes direct: a peer that has a sidecar, or may have one, would be reached around it", err)
		}
	}
}
