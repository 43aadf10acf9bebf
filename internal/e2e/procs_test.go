package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
)

// TestProcessCountFollowsLoad runs two sidecars as processes: mysql-1 as
// `groupwire run` starts by default, mysql-2 with GOMAXPROCS=2 in its
// environment. Idle, mysql-1 runs on one P; a burst of new links (each a
// TLS handshake on mysql-1) takes it to all of them; once the burst is
// over it goes back to one. mysql-2 keeps the count its operator set.
func TestProcessCountFollowsLoad(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: there is no count to move between")
	}
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true})
	if err != nil {
		t.Fatal(err)
	}
	startEchoes(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	startSidecarEnv(t, g, "mysql-1", "")
	p2 := startSidecarEnv(t, g, "mysql-2", "GOMAXPROCS=2")
	metrics := func(m string) string { return "http://" + g.Member(m).IP + ":9900/metrics" }
	const name = "groupwire_gomaxprocs"
	// The bounds below are generous: the count is looked at every 250 ms
	// and goes back to one after 5 s of light load.
	waitMetric(t, metrics("mysql-1"), name, 1, 20*time.Second)
	if got := metricSum(t, metrics("mysql-2"), name); got != 2 {
		t.Fatalf("mysql-2, started with GOMAXPROCS=2: %s %v, want 2", name, got)
	}

	burst, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for burst.Err() == nil {
				_, _ = g.Ping(burst, "mysql-2", "mysql-1", g.Channels[0], "hi")
			}
		})
	}
	high := float64(runtime.NumCPU())
	waitMetric(t, metrics("mysql-1"), name, high, 30*time.Second)
	stop()
	wg.Wait()
	waitMetric(t, metrics("mysql-1"), name, 1, 30*time.Second)
	if got := metricSum(t, metrics("mysql-2"), name); got != 2 {
		t.Fatalf("mysql-2, started with GOMAXPROCS=2, after the burst: %s %v, want 2\n%s", name, got, p2.logs)
	}
}

// startSidecarEnv runs `groupwire run` for member with GOMAXPROCS out of
// its environment, and env (KEY=VALUE, or "") in it.
func startSidecarEnv(t *testing.T, g *localgroup.Group, member, env string) *process {
	t.Helper()
	cmd := exec.Command(groupwireBinary(t), "run", "--config", g.ConfigPath, "--member", member, "--log-format", "json")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	p := startCmd(t, cmd)
	waitReady(t, "http://"+g.Member(member).IP+":9900/readyz", p)
	return p
}

// waitMetric waits until the metric's samples sum to want, within bound.
func waitMetric(t *testing.T, url, name string, want float64, bound time.Duration) {
	t.Helper()
	testutil.WaitFor(t, bound, fmt.Sprintf("%s %s = %v", url, name, want), func() bool { return metricSum(t, url, name) == want })
}
