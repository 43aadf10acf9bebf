package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// LockedBuffer is an io.Writer that tests can read while processes,
// sidecars or loggers write to it. Its zero value is ready to use.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor waits until the buffer holds every one of wants, failing the test
// after timeout with the missing string and the whole buffer.
func (b *LockedBuffer) WaitFor(t testing.TB, timeout time.Duration, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := firstMissing(b.String(), wants)
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q within %v in:\n%s", missing, timeout, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstMissing returns the first of wants that s lacks, or "".
func firstMissing(s string, wants []string) string {
	for _, w := range wants {
		if !strings.Contains(s, w) {
			return w
		}
	}
	return ""
}
