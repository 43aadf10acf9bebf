package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// bulkUp writes for the test's duration on each of streams links and
// counts what the server acknowledges having read.
func bulkUp(ctx context.Context, cfg runConfig, streams int) (map[string]float64, error) {
	return bulk(ctx, cfg, streams, opSink, sinkStream)
}

// bulkDown reads for the test's duration from each of streams links whose
// server writes as fast as it can.
func bulkDown(ctx context.Context, cfg runConfig, streams int) (map[string]float64, error) {
	return bulk(ctx, cfg, streams, opSource, sourceStream)
}

// bulk runs stream on each of streams links opened with op until the
// test's duration is up, and turns the byte counts into metrics.
func bulk(ctx context.Context, cfg runConfig, streams int, op byte, stream func(*net.TCPConn, time.Time) (int64, error)) (map[string]float64, error) {
	conns, err := dialAll(ctx, cfg.target, op, streams)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	cpu, err := startCPU(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(cfg.duration)
	counts := make([]int64, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = stream(c, end)
		}()
	}
	wg.Wait()
	return bulkMetrics(cpu, counts, errs, time.Since(start))
}

// sinkStream writes chunks until end, half-closes and reads the server's
// count of bytes received.
func sinkStream(c *net.TCPConn, end time.Time) (int64, error) {
	buf := make([]byte, chunkSize)
	for time.Now().Before(end) {
		if _, err := c.Write(buf); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, fmt.Errorf("half-close: %w", err)
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("read the server's count: %w", err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// sourceStream counts the bytes read until end.
func sourceStream(c *net.TCPConn, end time.Time) (int64, error) {
	if err := c.SetReadDeadline(end); err != nil {
		return 0, err
	}
	buf := make([]byte, chunkSize)
	var n int64
	for {
		nr, err := c.Read(buf)
		n += int64(nr)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read after %d bytes: %w", n, err)
		}
	}
}

func bulkMetrics(cpu *cpuMeter, counts []int64, errs []error, elapsed time.Duration) (map[string]float64, error) {
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("no bytes moved")
	}
	m := map[string]float64{
		"gbit_s": float64(total) * 8 / elapsed.Seconds() / 1e9,
		"bytes":  float64(total),
	}
	if sec, ok, err := cpu.seconds(); err != nil {
		return nil, err
	} else if ok {
		m["cpu_s_per_gb"] = sec / (float64(total) / 1e9)
		m["cpu_sys_share"] = cpu.sysShare
		cpu.addPer(m, float64(total)/(1<<20), "mib")
	}
	return m, nil
}

// dialAll opens n links, all or none.
func dialAll(ctx context.Context, target string, op byte, n int) ([]*net.TCPConn, error) {
	var conns []*net.TCPConn
	for range n {
		c, err := dial(ctx, target, op)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*net.TCPConn) {
	for _, c := range conns {
		c.Close()
	}
}
