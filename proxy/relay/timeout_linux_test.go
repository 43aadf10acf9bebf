package relay

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/groupwire/groupwire/transport"
)

// TestWouldBlockIsOnlyTheSocketsOwn: a dead socket's ETIMEDOUT (what
// TCP_USER_TIMEOUT gives) is a Timeout() error as well, and the relay
// must end the link on it rather than wait for more bytes.
func TestWouldBlockIsOnlyTheSocketsOwn(t *testing.T) {
	if !wouldBlock(transport.ErrWouldBlock) {
		t.Error("transport.ErrWouldBlock is not would-block")
	}
	timedOut := os.NewSyscallError("read", syscall.ETIMEDOUT)
	var ne interface{ Timeout() bool }
	if !errors.As(timedOut, &ne) || !ne.Timeout() {
		t.Fatal("test premise: ETIMEDOUT is no longer a Timeout() error")
	}
	if wouldBlock(timedOut) {
		t.Error("ETIMEDOUT taken for would-block: a timed-out link would never end")
	}
	if wouldBlock(os.ErrDeadlineExceeded) {
		t.Error("a passed deadline taken for would-block")
	}
}
