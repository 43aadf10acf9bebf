//go:build linux

package netns

import (
	"flag"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/groupwire/groupwire/internal/testutil"
)

// whoami, when set, makes the test binary a tiny member instead of running
// tests: it listens there and tells each connection the address it came
// from. The drop-in test runs it in a namespace to see the source address
// a member sees.
var whoami = flag.String("whoami", "", "serve \"from <remote address>\" on this address instead of testing")

func TestMain(m *testing.M) {
	flag.Parse()
	if *whoami != "" {
		serveWhoami(*whoami)
		return
	}
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// runCmd runs the built binary and returns its combined output and error.
func runCmd(t *testing.T, args ...string) (string, error) { return testutil.RunGroupwire(t, args...) }

// serveWhoami answers every connection on addr with the address it came
// from, until killed.
func serveWhoami(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "from %s\n", host)
		c.Close()
	}
}
