package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQuantileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := quantile(s, q); got != want {
			t.Errorf("quantile(%v) = %d, want %d", q, got, want)
		}
	}
}

func TestMedianAndRatio(t *testing.T) {
	tb := newTable([]result{
		{Pair: "gw", Round: 1, Test: "pp-1", Metrics: map[string]float64{"p50_us": 30}},
		{Pair: "gw", Round: 2, Test: "pp-1", Metrics: map[string]float64{"p50_us": 10}},
		{Pair: "gw", Round: 3, Test: "pp-1", Metrics: map[string]float64{"p50_us": 20}},
		{Pair: "ref", Round: 1, Test: "pp-1", Metrics: map[string]float64{"p50_us": 40}},
	})
	if m, ok := tb.median("gw", "pp-1", "p50_us"); !ok || m != 20 {
		t.Errorf("median = %v, %v; want 20", m, ok)
	}
	if r, ok := tb.ratio("gw", "ref", "pp-1", "p50_us"); !ok || r != 0.5 {
		t.Errorf("ratio = %v, %v; want 0.5", r, ok)
	}
	if _, ok := tb.median("gw", "connect", "links_s"); ok {
		t.Error("median of a metric never measured reported ok")
	}
}

func TestRequireLoopback(t *testing.T) {
	child := os.Getenv("GWLOAD_TEST_NETNS") // set in the runs below, never recursing
	inNetns := child == "named"
	for addr, ok := range map[string]bool{"127.0.0.30:7002": true, "10.0.0.1:7002": inNetns, "[::1]:7002": false, "localhost:1": false} {
		if err := requireLoopback(addr); (err == nil) != ok {
			t.Errorf("requireLoopback(%s) = %v (in a network namespace of its own: %v)", addr, err, inNetns)
		}
	}
	if child != "" {
		return
	}
	// Run this test again in a named network namespace, as bench/dropin.sh
	// runs gwload: there a 10.x address is allowed.
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		t.Log("not root or no ip(8): the namespace half is not run")
		return
	}
	ns := fmt.Sprintf("gwload-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestRequireLoopback$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GWLOAD_TEST_NETNS=named")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("in network namespace %s: %v\n%s", ns, err, out)
	}
	// unshare makes a namespace with no name: still refused there.
	cmd = exec.Command("unshare", "--net", os.Args[0], "-test.run=^TestRequireLoopback$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GWLOAD_TEST_NETNS=unnamed")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("in an unnamed network namespace: %v\n%s", err, out)
	}
}

// TestDriversAgainstTheServer runs every timed driver briefly against the
// real server over loopback, with no proxy in between.
func TestDriversAgainstTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); acceptLoop(ln, &wg) }()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	cfg := runConfig{target: ln.Addr().String(), duration: 150 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for name, want := range map[string]string{"bulk-up-1": "gbit_s", "bulk-down-8": "gbit_s", "pp-1": "p50_us", "pp-16": "msgs_s", "connect": "links_s"} {
		m, err := tests[name](ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m[want] <= 0 {
			t.Errorf("%s: %s = %v, want > 0 (%v)", name, want, m[want], m)
		}
		if _, ok := m["cpu_sys_share"]; ok {
			t.Errorf("%s: CPU reported with no proxy to measure", name)
		}
	}
}

// TestBestPeerPerRow picks the highest median where higher is better and
// the lowest where lower is, and names a peer with no samples as skipped.
func TestBestPeerPerRow(t *testing.T) {
	tb := newTable([]result{
		{Pair: "haproxy", Round: 1, Test: "pp-16", Metrics: map[string]float64{"msgs_s": 300, "p99_us": 90}},
		{Pair: "stunnel", Round: 1, Test: "pp-16", Metrics: map[string]float64{"msgs_s": 200, "p99_us": 80}},
		{Pair: "gw-verify", Round: 1, Test: "pp-16", Metrics: map[string]float64{"msgs_s": 360, "p99_us": 40}},
	})
	peers := []string{"stunnel", "haproxy", "ghostunnel"}
	for _, c := range []struct {
		r    row
		want string
		v    float64
	}{
		{row{"pp-16", "msgs_s", "", true}, "haproxy", 300},
		{row{"pp-16", "p99_us", "", false}, "stunnel", 80},
	} {
		if p, v, ok := tb.bestPeer(peers, c.r); !ok || p != c.want || v != c.v {
			t.Errorf("bestPeer(%s) = %s %v %v, want %s %v", c.r.metric, p, v, ok, c.want, c.v)
		}
	}
	if got := tb.missing(peers); !slices.Equal(got, []string{"ghostunnel"}) {
		t.Errorf("missing = %v, want [ghostunnel]", got)
	}
	var b strings.Builder
	writeTargets(&b, tb, comparison{peers: peers, gw: "gw-verify", gwPlain: "gw-disabled", floor: "socat"})
	if !strings.Contains(b.String(), "| 16-link msgs/s | ≥ 1.20× | haproxy | 1.20× | yes |") {
		t.Errorf("targets table lacks the 16-link row against haproxy:\n%s", b.String())
	}
}
