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

// runCmd runs the built binary and returns its combined output and error.
func runCmd(t *testing.T, args ...string) (string, error) { return testutil.RunGroupwire(t, args...) }
