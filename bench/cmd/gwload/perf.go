package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/groupwire/groupwire/bench/internal/procstat"
)

// perfEvents are the syscalls perf counts: the total, and the ones a relay
// spends its time in. Their keys in a result are "sc_" + the name after
// sys_enter_ ("sc_all" for the total).
var perfEvents = []string{
	"raw_syscalls:sys_enter",
	"syscalls:sys_enter_read",
	"syscalls:sys_enter_write",
	"syscalls:sys_enter_recvfrom",
	"syscalls:sys_enter_sendto",
	"syscalls:sys_enter_epoll_pwait",
	"syscalls:sys_enter_futex",
	"syscalls:sys_enter_nanosleep",
}

// perfCounter counts the proxies' syscalls with `perf stat` over the
// measured interval.
type perfCounter struct {
	cmd *exec.Cmd
	out string
}

// startPerf attaches perf stat to every process of the sessions sids.
func startPerf(sids []int) (*perfCounter, error) {
	var pids []string
	for _, sid := range sids {
		ps, err := procstat.SessionPids(sid)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			pids = append(pids, strconv.Itoa(p))
		}
	}
	f, err := os.CreateTemp("", "gwload-perf-*.csv")
	if err != nil {
		return nil, err
	}
	f.Close()
	cmd := exec.Command("perf", "stat", "-x,", "-o", f.Name(), "-e", strings.Join(perfEvents, ","), "-p", strings.Join(pids, ","))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start perf stat: %w", err)
	}
	time.Sleep(200 * time.Millisecond) // perf attaches before the interval starts
	return &perfCounter{cmd: cmd, out: f.Name()}, nil
}

// stop ends the count and returns it by key (sc_all, sc_read, ...).
func (p *perfCounter) stop() (map[string]float64, error) {
	defer os.Remove(p.out)
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("perf stat did not stop")
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return nil, err
	}
	return parsePerfCSV(b), nil
}

// parsePerfCSV reads perf stat -x, output: value,unit,event,...
func parsePerfCSV(b []byte) map[string]float64 {
	m := make(map[string]float64)
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Split(string(line), ",")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // "<not counted>"
		}
		name := "all"
		if _, ev, ok := strings.Cut(f[2], "sys_enter_"); ok {
			name = ev
		} else if f[2] != "raw_syscalls:sys_enter" {
			continue
		}
		m["sc_"+name] = v
	}
	return m
}
