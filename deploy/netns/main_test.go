//go:build linux

package netns

import (
	"os"
	"testing"

	"github.com/groupwire/groupwire/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// groupwireBinary is the groupwire command, built once for these tests.
func groupwireBinary(t *testing.T) string { return testutil.Groupwire(t) }

// runCmd runs the built binary and returns its combined output and error.
func runCmd(t *testing.T, args ...string) (string, error) { return testutil.RunGroupwire(t, args...) }
