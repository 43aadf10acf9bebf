package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/groupwire/groupwire/bench/internal/procstat"
)

// idleSettle is how long the sidecars get to settle before RSS is read.
const idleSettle = 2 * time.Second

// idleMemory opens cfg.links links, each with one round trip so it is
// tunnelled end to end, holds them, and reads the proxies' RSS before,
// while holding, and after closing them.
func idleMemory(ctx context.Context, cfg runConfig) (map[string]float64, error) {
	if len(cfg.sids) == 0 {
		return map[string]float64{}, nil // nothing to measure for direct
	}
	base, err := procstat.UsageOf(cfg.sids)
	if err != nil {
		return nil, err
	}
	conns, err := openIdle(ctx, cfg.target, cfg.links)
	if err != nil {
		return nil, err
	}
	time.Sleep(idleSettle)
	hold, err := procstat.UsageOf(cfg.sids)
	closeAll(conns)
	if err != nil {
		return nil, err
	}
	time.Sleep(idleSettle + time.Second)
	after, err := procstat.UsageOf(cfg.sids)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	var perLink, afterDelta float64
	for i := range cfg.sids {
		d := float64(hold[i].RSSKiB-base[i].RSSKiB) / float64(cfg.links)
		m[fmt.Sprintf("kib_per_link_%d", i)] = d
		perLink += d
		afterDelta += float64(after[i].RSSKiB - base[i].RSSKiB)
		m[fmt.Sprintf("rss_base_kib_%d", i)] = float64(base[i].RSSKiB)
	}
	m["kib_per_link"] = perLink
	m["rss_after_close_kib"] = afterDelta
	return m, nil
}

// openIdle opens n links with 8 dialers, one 32-byte round trip each.
func openIdle(ctx context.Context, target string, n int) ([]*net.TCPConn, error) {
	conns := make([]*net.TCPConn, n)
	errs := make(chan error, connectDialers)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range connectDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := dial(ctx, target, opEcho)
				if err == nil {
					err = idleRoundTrip(c)
				}
				if err != nil {
					errs <- fmt.Errorf("link %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}

func idleRoundTrip(c *net.TCPConn) error {
	msg := make([]byte, 32)
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, msg); err != nil {
		c.Close()
		return fmt.Errorf("read the echo: %w", err)
	}
	return nil
}
