// Command gwetcd is the load of groupwire's group-workload benchmark
// (bench/group.sh): N concurrent writers put fresh keys through one etcd
// member for a while, and it prints one JSON result (puts/s, p50, p99, and
// the CPU the host and the tunnels spent per put) in the format gwload
// report reads.
//
// Without -rate the writers put as fast as the cluster acknowledges: on a
// host that runs the whole group, that finds where its CPU runs out. With
// -rate they put at that total rate, each put timed from when it was due
// (so a put that waited behind a slow one counts its wait): the latency a
// group pays at a load its hosts carry.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/groupwire/groupwire/bench/internal/procstat"
)

// result is one measurement, as gwload prints it.
type result struct {
	Pair    string             `json:"pair"`
	Round   int                `json:"round"`
	Test    string             `json:"test"`
	Metrics map[string]float64 `json:"metrics"`
}

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:2379", "the etcd member the writers put through")
	writers := flag.Int("writers", 8, "concurrent writers")
	duration := flag.Duration("duration", 10*time.Second, "how long the writers put")
	size := flag.Int("value", 256, "value size in bytes")
	pair := flag.String("pair", "", "the configuration under test, for the report")
	round := flag.Int("round", 1, "round number, for the report")
	rate := flag.Float64("rate", 0, "total puts per second, paced (0: as fast as they are acknowledged)")
	tunnels := flag.String("tunnels", "", "comma-separated session ids of the tunnel processes (sidecars, haproxy: the scripts start each with setsid, so its pid), whose CPU per put is reported")
	flag.Parse()
	if err := measure(load{*endpoint, *writers, *duration, *size, *rate}, *tunnels, *pair, *round); err != nil {
		fmt.Fprintln(os.Stderr, "gwetcd:", err)
		os.Exit(1)
	}
}

// measure runs l and prints its result, with the CPU the host and the
// tunnel processes spent per put.
func measure(l load, tunnels, pair string, round int) error {
	pids, err := parsePids(tunnels)
	if err != nil {
		return err
	}
	before, err := sampleCPU(pids)
	if err != nil {
		return err
	}
	m, err := run(l)
	if err != nil {
		return err
	}
	after, err := sampleCPU(pids)
	if err != nil {
		return err
	}
	puts := m["puts_s"] * l.duration.Seconds()
	m["host_cpu_us_per_put"] = (after.host - before.host).Seconds() * 1e6 / puts
	m["host_busy"] = (after.host - before.host).Seconds() / after.wall.Sub(before.wall).Seconds() / float64(runtime.NumCPU())
	if len(pids) > 0 {
		m["tunnel_cpu_us_per_put"] = (after.tunnels - before.tunnels) * 1e6 / puts
	}
	test := "etcd-put"
	if l.rate > 0 {
		test = "etcd-put-paced"
	}
	return json.NewEncoder(os.Stdout).Encode(result{Pair: pair, Round: round, Test: test, Metrics: m})
}

// load is what the writers do.
type load struct {
	endpoint string
	writers  int
	duration time.Duration
	size     int
	rate     float64 // total puts/s; 0 for as fast as acknowledged
}

// run puts for l.duration with l.writers concurrent clients and returns
// the rate and latency quantiles of the acknowledged puts.
func run(l load) (map[string]float64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{l.endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", l.endpoint, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), l.duration+30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "gwetcd/warmup", "x"); err != nil {
		return nil, fmt.Errorf("warm-up put: %w", err)
	}
	value := strings.Repeat("v", l.size)
	start := time.Now()
	end := start.Add(l.duration)
	lat := make([][]time.Duration, l.writers)
	errs := make([]error, l.writers)
	var wg sync.WaitGroup
	for w := range l.writers {
		var s schedule // as fast as acknowledged
		if l.rate > 0 {
			// writer w's puts are due every writers/rate, offset so
			// that the writers take turns
			s = schedule{start: start, every: time.Duration(float64(l.writers) / l.rate * float64(time.Second))}
			s.start = s.start.Add(time.Duration(w) * s.every / time.Duration(l.writers))
		}
		wg.Go(func() { lat[w], errs[w] = putUntil(ctx, cli, w, value, s, end) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return nil, errors.New("no put was acknowledged")
	}
	return map[string]float64{
		"puts_s": float64(len(all)) / l.duration.Seconds(),
		"p50_ms": ms(all[len(all)/2]),
		"p99_ms": ms(all[min(len(all)-1, len(all)*99/100)]),
	}, nil
}

// schedule is when a paced writer's puts are due: the i-th at
// start + i*every. Its zero value is no pacing.
type schedule struct {
	start time.Time
	every time.Duration
}

// due returns when put i is due, and whether the writer waits for it.
func (s schedule) due(i int) (time.Time, bool) {
	if s.every == 0 {
		return time.Now(), false
	}
	return s.start.Add(time.Duration(i) * s.every), true
}

// putUntil puts fresh keys, one after another or as s paces them, until
// end, and returns each put's latency: from when it was due, if paced.
func putUntil(ctx context.Context, cli *clientv3.Client, writer int, value string, s schedule, end time.Time) ([]time.Duration, error) {
	var lat []time.Duration
	for i := 0; ; i++ {
		due, paced := s.due(i)
		if !due.Before(end) {
			return lat, nil
		}
		if paced {
			time.Sleep(time.Until(due))
		}
		if _, err := cli.Put(ctx, fmt.Sprintf("gwetcd/%d/%d", writer, i), value); err != nil {
			return lat, fmt.Errorf("writer %d, put %d: %w", writer, i, err)
		}
		lat = append(lat, time.Since(due))
	}
}

// cpuSample is the host's busy CPU time (every CPU), the tunnel
// sessions' CPU seconds, and when they were read.
type cpuSample struct {
	host    time.Duration
	tunnels float64
	wall    time.Time
}

// sampleCPU reads the host's busy time and that of the sessions sids.
func sampleCPU(sids []int) (cpuSample, error) {
	s := cpuSample{wall: time.Now()}
	var err error
	if s.host, err = procstat.HostBusy(); err != nil {
		return s, err
	}
	us, err := procstat.UsageOf(sids)
	if err != nil {
		return s, fmt.Errorf("-tunnels: %w", err)
	}
	s.tunnels, _, _ = procstat.SumCPU(us)
	return s, nil
}

// parsePids parses -tunnels.
func parsePids(list string) ([]int, error) {
	var pids []int
	for _, v := range strings.Split(list, ",") {
		if v == "" {
			continue
		}
		pid, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("-tunnels: %q is not a session id", v)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
