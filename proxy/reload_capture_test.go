package proxy

import (
	"strings"
	"testing"

	"github.com/groupwire/groupwire/proxy/cluster"
)

// TestCaptureChangesNeedARestart: a reload cannot switch between loopback
// and drop-in mode, nor move the capture listener, nor hand the rules to
// or from the operator (the README says so); members and ports can change.
func TestCaptureChangesNeedARestart(t *testing.T) {
	base := "group: g\ntls: {ssl_mode: DISABLED}\nchannels: {peer: {}}\nmembers:\n" +
		"  m1: {address: \"10.0.0.1:24900\", ports: {peer: 2380}}\n  m2: {address: \"10.0.0.2:24900\", ports: {peer: PORT}}\n"
	plan := func(extra, port string) *cluster.Plan {
		t.Helper()
		cfg, err := cluster.ParseConfig([]byte(strings.Replace(base, "PORT", port, 1)+extra), "c.yaml")
		if err != nil {
			t.Fatal(err)
		}
		p, err := cfg.Plan("m1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dropIn := plan("capture: transparent\n", "2380")
	for _, c := range []struct {
		name    string
		to      *cluster.Plan
		restart bool
	}{
		{"loopback to drop-in", dropIn, true},
		{"capture_port", plan("capture: transparent\ncapture_port: 15001\n", "2380"), true},
		{"capture_rules", plan("capture: transparent\ncapture_rules: external\n", "2380"), true},
		{"a peer's port", plan("capture: transparent\n", "2390"), false},
	} {
		from := dropIn
		if c.name == "loopback to drop-in" {
			from = plan("", "2381")
		}
		if err := restartNeeded(from, c.to); (err != nil) != c.restart {
			t.Errorf("%s: restartNeeded = %v, want a restart: %v", c.name, err, c.restart)
		}
	}
}
