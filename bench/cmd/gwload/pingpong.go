package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// pingPong sends a 256-byte request and waits for the 256-byte echo, over
// each of links links in parallel, for the test's duration.
func pingPong(ctx context.Context, cfg runConfig, links int) (map[string]float64, error) {
	conns, err := dialAll(ctx, cfg.target, opEcho, links)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	// Warm up: the first messages pay for lazy setup (the ACCEPT of a
	// tunnelled link, TCP slow start).
	for _, c := range conns {
		if err := warmUp(c, 20); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	cpu, err := startCPU(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(cfg.duration)
	samples := make([][]time.Duration, links)
	errs := make([]error, links)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples[i], errs[i] = roundTrips(c, end, make([]time.Duration, 0, 1<<16))
		}()
	}
	wg.Wait()
	return latencyMetrics(cpu, samples, errs, time.Since(start), "msgs_s", "cpu_us_per_msg", "no round trip completed")
}

// latencyMetrics turns per-worker latency samples into a rate (rateKey,
// per second), p50/p99/p99.9 in µs and the sidecars' CPU per sample
// (cpuKey).
func latencyMetrics(cpu *cpuMeter, samples [][]time.Duration, errs []error, elapsed time.Duration, rateKey, cpuKey, none string) (map[string]float64, error) {
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	all := slices.Concat(samples...)
	if len(all) == 0 {
		return nil, errors.New(none)
	}
	slices.Sort(all)
	m := map[string]float64{
		rateKey:   float64(len(all)) / elapsed.Seconds(),
		"p50_us":  micros(quantile(all, 0.50)),
		"p99_us":  micros(quantile(all, 0.99)),
		"p999_us": micros(quantile(all, 0.999)),
	}
	if sec, ok, err := cpu.seconds(); err != nil {
		return nil, err
	} else if ok {
		m[cpuKey] = sec * 1e6 / float64(len(all))
		m["cpu_sys_share"] = cpu.sysShare
		cpu.addPer(m, float64(len(all)), strings.TrimPrefix(cpuKey, "cpu_us_per_"))
	}
	return m, nil
}

// roundTrips runs request/response round trips on c until end, appending
// each one's duration to samples.
func roundTrips(c *net.TCPConn, end time.Time, samples []time.Duration) ([]time.Duration, error) {
	req := make([]byte, msgSize)
	resp := make([]byte, msgSize)
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			return samples, nil
		}
		if _, err := c.Write(req); err != nil {
			return samples, fmt.Errorf("write request: %w", err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return samples, fmt.Errorf("read response: %w", err)
		}
		samples = append(samples, time.Since(t0))
	}
}

// warmUp makes n round trips on c.
func warmUp(c *net.TCPConn, n int) error {
	buf := make([]byte, msgSize)
	for range n {
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("write request: %w", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("read response: %w", err)
		}
	}
	return nil
}

// quantile returns the q-quantile of sorted samples (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
