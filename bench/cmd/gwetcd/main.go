// Command gwetcd is the load of groupwire's group-workload benchmark
// (bench/group.sh): N concurrent writers put fresh keys through one etcd
// member for a while, and it prints one JSON result (puts/s, p50, p99) in
// the format gwload report reads.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
	flag.Parse()
	m, err := run(*endpoint, *writers, *duration, *size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwetcd:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(result{Pair: *pair, Round: *round, Test: "etcd-put", Metrics: m})
}

// run puts for duration with writers concurrent clients and returns the
// rate and latency quantiles of the acknowledged puts.
func run(endpoint string, writers int, duration time.Duration, size int) (map[string]float64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", endpoint, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), duration+30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "gwetcd/warmup", "x"); err != nil {
		return nil, fmt.Errorf("warm-up put: %w", err)
	}
	value := strings.Repeat("v", size)
	end := time.Now().Add(duration)
	lat := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { lat[w], errs[w] = putUntil(ctx, cli, w, value, end) })
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
		"puts_s": float64(len(all)) / duration.Seconds(),
		"p50_ms": ms(all[len(all)/2]),
		"p99_ms": ms(all[min(len(all)-1, len(all)*99/100)]),
	}, nil
}

// putUntil puts fresh keys one after another until end, and returns each
// put's latency.
func putUntil(ctx context.Context, cli *clientv3.Client, writer int, value string, end time.Time) ([]time.Duration, error) {
	var lat []time.Duration
	for i := 0; time.Now().Before(end); i++ {
		start := time.Now()
		if _, err := cli.Put(ctx, fmt.Sprintf("gwetcd/%d/%d", writer, i), value); err != nil {
			return lat, fmt.Errorf("writer %d, put %d: %w", writer, i, err)
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
