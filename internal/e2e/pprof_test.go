package e2e

import (
	"strings"
	"testing"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
)

// TestPprofOnlyWhenAsked: the admin listener serves the Go runtime's
// profiles when the sidecar runs with GROUPWIRE_PPROF=1 (mysql-1), and not
// otherwise (mysql-2); --pprof on a member without an admin listener is
// refused, naming what is missing.
func TestPprofOnlyWhenAsked(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true})
	if err != nil {
		t.Fatal(err)
	}
	startSidecarEnv(t, g, "mysql-1", "GROUPWIRE_PPROF=1")
	startSidecarEnv(t, g, "mysql-2", "")
	admin := func(m string) string { return "http://" + g.Member(m).IP + ":9900" }
	if code, body := testutil.HTTPGet(t, admin("mysql-1")+"/debug/pprof/cmdline", ""); code != 200 || !strings.Contains(body, "run") {
		t.Fatalf("mysql-1, with GROUPWIRE_PPROF=1: /debug/pprof/cmdline %d %q, want 200 and its command line", code, body)
	}
	if code, body := testutil.HTTPGet(t, admin("mysql-1")+"/debug/pprof/goroutine?debug=1", ""); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("mysql-1, with GROUPWIRE_PPROF=1: /debug/pprof/goroutine %d, want 200 and a goroutine profile:\n%.300s", code, body)
	}
	if code, _ := testutil.HTTPGet(t, admin("mysql-2")+"/debug/pprof/cmdline", ""); code != 404 {
		t.Fatalf("mysql-2, without GROUPWIRE_PPROF: /debug/pprof/cmdline %d, want 404 (profiles are opt-in)", code)
	}

	bare, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), NoEcho: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "run", "--config", bare.ConfigPath, "--member", "mysql-1", "--pprof")
	if err == nil || !strings.Contains(out, "--pprof") || !strings.Contains(out, "admin") {
		t.Fatalf("run --pprof without an admin listener: %v, want a refusal naming the admin listener:\n%s", err, out)
	}
}
