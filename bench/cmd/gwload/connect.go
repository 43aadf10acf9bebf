package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// connectDialers is how many clients open links at once.
const connectDialers = 8

// connectRate opens links from 8 dialers for the test's duration: each
// link connects, makes one round trip and closes.
func connectRate(ctx context.Context, cfg runConfig) (map[string]float64, error) {
	cpu, err := startCPU(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(cfg.duration)
	samples := make([][]time.Duration, connectDialers)
	errs := make([]error, connectDialers)
	var wg sync.WaitGroup
	for i := range connectDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				d, err := oneLink(ctx, cfg.target)
				if err != nil {
					errs[i] = err
					return
				}
				samples[i] = append(samples[i], d)
			}
		}()
	}
	wg.Wait()
	return latencyMetrics(cpu, samples, errs, time.Since(start), "links_s", "cpu_us_per_link", "no link completed")
}

// oneLink connects, makes one 32-byte round trip and closes, returning
// the time from connect to the answer.
func oneLink(ctx context.Context, target string) (time.Duration, error) {
	t0 := time.Now()
	c, err := dial(ctx, target, opEcho)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := make([]byte, 32)
	if _, err := c.Write(msg); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, msg); err != nil {
		return 0, fmt.Errorf("read the echo: %w", err)
	}
	return time.Since(t0), nil
}
