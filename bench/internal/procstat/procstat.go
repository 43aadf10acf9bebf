// Package procstat reads what the benchmark tools measure from /proc: the
// CPU time, memory and wake-ups of a proxy's process session, and the
// host's busy CPU time. It is Linux's; the tools run nowhere else.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux this tool runs on.
const clockTicks = 100

// Usage is what one proxy process group used: CPU seconds (its own
// and its reaped children's, so socat's per-link forks count) and resident
// memory summed over every live process of its session.
type Usage struct {
	CPUSeconds float64 // user + system
	SysSeconds float64 // system (kernel) only
	RSSKiB     int64
	Procs      int
	// Wakeups is the voluntary context switches of every live thread:
	// each is a thread that parked and was woken again.
	Wakeups int64
}

// SessionUsage sums the usage of every process whose session id is sid
// (the script starts each proxy with setsid, so sid is the proxy's pid).
func SessionUsage(sid int) (Usage, error) {
	var u Usage
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return u, fmt.Errorf("read /proc: %w", err)
	}
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.session != sid {
			continue // gone or another session
		}
		found = true
		u.Procs++
		u.CPUSeconds += float64(st.utime+st.stime+st.cutime+st.cstime) / clockTicks
		u.SysSeconds += float64(st.stime+st.cstime) / clockTicks
		rss, err := VMRSS(pid)
		if err == nil {
			u.RSSKiB += rss
		}
		u.Wakeups += wakeups(pid)
	}
	if !found {
		return u, fmt.Errorf("no process in session %d: did the proxy exit?", sid)
	}
	return u, nil
}

type stat struct {
	session                      int
	utime, stime, cutime, cstime int64
}

// readStat parses /proc/PID/stat. Fields are counted after the last ')',
// since the command name may hold spaces and parentheses.
func readStat(pid int) (stat, error) {
	var s stat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field k is f[k-3].
	if len(f) < 15 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	s.session = int(num(6))
	s.utime, s.stime, s.cutime, s.cstime = num(14), num(15), num(16), num(17)
	return s, nil
}

// SessionPids lists the processes of session sid.
func SessionPids(sid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if st, err := readStat(pid); err == nil && st.session == sid {
				out = append(out, pid)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no process in session %d: did the proxy exit?", sid)
	}
	return out, nil
}

// wakeups sums voluntary_ctxt_switches over the threads of pid.
func wakeups(pid int) int64 {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}

// VMRSS reads VmRSS (KiB) from /proc/PID/status.
func VMRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// UsageOf samples every session in sids.
func UsageOf(sids []int) ([]Usage, error) {
	out := make([]Usage, len(sids))
	for i, sid := range sids {
		u, err := SessionUsage(sid)
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

// SumCPU returns the total and the kernel CPU seconds of us, and the
// wake-ups.
func SumCPU(us []Usage) (total, sys float64, wake int64) {
	for _, u := range us {
		total += u.CPUSeconds
		sys += u.SysSeconds
		wake += u.Wakeups
	}
	return total, sys, wake
}

// HostBusy is the host's busy CPU time since boot, summed over every CPU:
// all of /proc/stat's first line but idle and iowait (and the guest
// times, which user already counts).
func HostBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: %q: not the cpu line", line)
	}
	var ticks int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		if i != 3 && i != 4 { // idle, iowait
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
