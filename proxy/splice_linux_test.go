package proxy_test

import (
	"io"
	"net"
	"testing"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
)

// TestDisabledLinksAreSpliced backs the claim that DISABLED links are
// spliced by the kernel, not copied through a buffer. Linux counts in
// /proc/self/io's rchar every byte a read(2) or recv(2) passes to this
// process, and splice(2) passes none. The sidecars and the sink run in this
// test process: a spliced path adds only the sink's own reads (the payload
// once), a buffered copy adds two relays' reads on top (three times).
func TestDisabledLinksAreSpliced(t *testing.T) {
	const payload = 64 << 20
	g, _, logs := startGroup(t, localgroup.Options{Mode: "DISABLED", NoEcho: true})
	got := make(chan int64, 1)
	serve(t, g.ServiceAddr("mysql-2", "group"), func(c *net.TCPConn) {
		n, _ := io.Copy(io.Discard, struct{ io.Reader }{c})
		got <- n
	})
	c := dialFrom(t, g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group"))
	before := testutil.ProcIO(t, "rchar")
	chunk := make([]byte, 1<<20)
	for range payload / len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("write: %v\nlog:\n%s", err, logs)
		}
	}
	c.CloseWrite()
	if n := <-got; n != payload {
		t.Fatalf("sink got %d bytes, want %d\nlog:\n%s", n, payload, logs)
	}
	read := testutil.ProcIO(t, "rchar") - before
	t.Logf("%d MiB through a DISABLED link: this process read(2) %.2f× the payload", payload>>20, float64(read)/payload)
	if read > payload*3/2 {
		t.Errorf("read(2) passed %d bytes for a %d-byte payload: the relays copied through userspace instead of splicing", read, payload)
	}
}
