package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/groupwire/groupwire/bench/internal/procstat"
)

// result is one measurement: one test through one pair in one round.
type result struct {
	Pair    string             `json:"pair"`
	Round   int                `json:"round"`
	Test    string             `json:"test"`
	Metrics map[string]float64 `json:"metrics"`
}

// runConfig is what every test needs.
type runConfig struct {
	target   string
	duration time.Duration
	sids     []int // sessions of the proxy processes; empty for direct
	links    int   // idle test: links to hold
	perf     bool  // count the proxies' syscalls with perf stat
}

// tests maps a test name to its driver.
var tests = map[string]func(context.Context, runConfig) (map[string]float64, error){
	"bulk-up-1":   func(ctx context.Context, c runConfig) (map[string]float64, error) { return bulkUp(ctx, c, 1) },
	"bulk-up-8":   func(ctx context.Context, c runConfig) (map[string]float64, error) { return bulkUp(ctx, c, 8) },
	"bulk-down-1": func(ctx context.Context, c runConfig) (map[string]float64, error) { return bulkDown(ctx, c, 1) },
	"bulk-down-8": func(ctx context.Context, c runConfig) (map[string]float64, error) { return bulkDown(ctx, c, 8) },
	"pp-1":        func(ctx context.Context, c runConfig) (map[string]float64, error) { return pingPong(ctx, c, 1) },
	"pp-16":       func(ctx context.Context, c runConfig) (map[string]float64, error) { return pingPong(ctx, c, 16) },
	"connect":     connectRate,
	"idle":        idleMemory,
}

// runMain runs one test and prints its result as one JSON line.
func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	pair := fs.String("pair", "direct", "name of the pair under test, for the report")
	round := fs.Int("round", 1, "round number, for the report")
	test := fs.String("test", "", "bulk-up-1, bulk-up-8, bulk-down-1, bulk-down-8, pp-1, pp-16, connect or idle")
	target := fs.String("target", "127.0.0.30:7002", "address the client connects to (the pair's entry, or the server)")
	duration := fs.Duration("duration", 3*time.Second, "how long a timed test runs")
	pids := fs.String("pids", "", "comma-separated session ids (pids started with setsid) of the proxy processes to measure")
	links := fs.Int("links", 1000, "idle test: links to open and hold")
	perf := fs.Bool("perf", false, "count the proxies' syscalls over the measured interval with perf stat")
	_ = fs.Parse(args)
	drive, ok := tests[*test]
	if !ok {
		return fmt.Errorf("run: unknown -test %q", *test)
	}
	if err := requireLoopback(*target); err != nil {
		return fmt.Errorf("run -target: %w", err)
	}
	cfg := runConfig{target: *target, duration: *duration, links: *links, perf: *perf}
	for _, p := range strings.FieldsFunc(*pids, func(r rune) bool { return r == ',' }) {
		sid, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("run -pids: %q is not a pid: %w", p, err)
		}
		cfg.sids = append(cfg.sids, sid)
	}
	// Every test is bounded: its own duration plus setup and teardown.
	ctx, cancel := context.WithTimeout(context.Background(), *duration+90*time.Second)
	defer cancel()
	m, err := drive(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s through %s (%s): %w", *test, *pair, *target, err)
	}
	return json.NewEncoder(os.Stdout).Encode(result{Pair: *pair, Round: *round, Test: *test, Metrics: m})
}

// dial connects to the target and sends the op byte.
func dial(ctx context.Context, target string, op byte) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(dl)
	}
	if _, err := tc.Write([]byte{op}); err != nil {
		tc.Close()
		return nil, fmt.Errorf("write op to %s: %w", target, err)
	}
	return tc, nil
}

// cpuMeter measures the CPU the proxy sessions use between start and
// stop, their wake-ups, and (with -perf) their syscalls.
type cpuMeter struct {
	sids              []int
	before, beforeSys float64
	beforeWake        int64
	perf              *perfCounter
	sysShare          float64            // kernel share of the last seconds() reading
	counts            map[string]float64 // wakeups and sc_* over the interval
}

func startCPU(cfg runConfig) (*cpuMeter, error) {
	m := &cpuMeter{sids: cfg.sids}
	if cfg.perf && len(cfg.sids) > 0 {
		p, err := startPerf(cfg.sids)
		if err != nil {
			return nil, err
		}
		m.perf = p
	}
	us, err := procstat.UsageOf(cfg.sids)
	if err != nil {
		return nil, err
	}
	m.before, m.beforeSys, m.beforeWake = procstat.SumCPU(us)
	return m, nil
}

// seconds returns the CPU seconds used since start; ok is false for a
// direct run (nothing to measure).
func (m *cpuMeter) seconds() (float64, bool, error) {
	if len(m.sids) == 0 {
		return 0, false, nil
	}
	us, err := procstat.UsageOf(m.sids)
	if err != nil {
		return 0, false, err
	}
	total, sys, wake := procstat.SumCPU(us)
	if d := total - m.before; d > 0 {
		m.sysShare = (sys - m.beforeSys) / d
	}
	m.counts = map[string]float64{"wakeups": float64(wake - m.beforeWake)}
	if m.perf != nil {
		sc, err := m.perf.stop()
		if err != nil {
			return 0, false, err
		}
		for k, v := range sc {
			m.counts[k] = v
		}
	}
	return total - m.before, true, nil
}

// addPer adds every count of the interval divided by units, as
// key + "_per_" + unit.
func (m *cpuMeter) addPer(out map[string]float64, units float64, unit string) {
	for k, v := range m.counts {
		out[k+"_per_"+unit] = v / units
	}
}
