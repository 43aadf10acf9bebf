package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux this tool runs on.
const clockTicks = 100

// procUsage is what one proxy process group used: CPU seconds (its own
// and its reaped children's, so socat's per-link forks count) and resident
// memory summed over every live process of its session.
type procUsage struct {
	CPUSeconds float64 // user + system
	SysSeconds float64 // system (kernel) only
	RSSKiB     int64
	Procs      int
	// Wakeups is the voluntary context switches of every live thread:
	// each is a thread that parked and was woken again.
	Wakeups int64
}

// sessionUsage sums the usage of every process whose session id is sid
// (the script starts each proxy with setsid, so sid is the proxy's pid).
func sessionUsage(sid int) (procUsage, error) {
	var u procUsage
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
		rss, err := vmRSS(pid)
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

// sessionPids lists the processes of session sid.
func sessionPids(sid int) ([]int, error) {
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

// vmRSS reads VmRSS (KiB) from /proc/PID/status.
func vmRSS(pid int) (int64, error) {
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

// usageOf samples every session in sids.
func usageOf(sids []int) ([]procUsage, error) {
	out := make([]procUsage, len(sids))
	for i, sid := range sids {
		u, err := sessionUsage(sid)
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

// sumCPU returns the total and the kernel CPU seconds of us, and the
// wake-ups.
func sumCPU(us []procUsage) (total, sys float64, wake int64) {
	for _, u := range us {
		total += u.CPUSeconds
		sys += u.SysSeconds
		wake += u.Wakeups
	}
	return total, sys, wake
}
