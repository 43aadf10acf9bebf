package proxy

import (
	"net"
	"sort"
	"sync"
	"time"
)

// logLimiter keeps a flood of refusals from filling the disk without
// hiding the one line an operator needs. It rate-limits per reason and
// source address: each (reason, source) pair lets logBurst lines through
// in each logPeriod and counts the rest, which flush hands over for one
// "N more suppressed" line. So a scanner's flood from one address never
// hides a refusal from another address, nor a refusal of another kind
// from the same one.
//
// The table is bounded by maxLogSources pairs. Past that, a pair not in
// the table shares its reason's overflow entry (source "other"), so a
// flood from very many addresses costs bounded memory and still names
// each reason.
type logLimiter struct {
	mu      sync.Mutex
	windows map[logKey]*logWindow
}

// logKey is what a budget is kept for.
type logKey struct {
	reason string
	source string // the remote IP, "" for lines about no remote, "other" past the bound
}

// logWindow is one key's current period.
type logWindow struct {
	start      time.Time
	shown      int
	suppressed int
}

const (
	logBurst      = 10
	logPeriod     = 10 * time.Second
	maxLogSources = 4096
	overflowSrc   = "other"
)

func newLogLimiter() *logLimiter { return &logLimiter{windows: make(map[logKey]*logWindow)} }

// allow reports whether a line about reason, caused by remote (an
// "ip:port" or ""), may be logged now.
func (l *logLimiter) allow(reason, remote string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := logKey{reason, remoteHost(remote)}
	w := l.windows[key]
	if w == nil && len(l.windows) >= maxLogSources {
		key.source = overflowSrc
		w = l.windows[key]
	}
	if w == nil || now.Sub(w.start) >= logPeriod && w.suppressed == 0 {
		w = &logWindow{start: now}
		l.windows[key] = w
	}
	if w.shown < logBurst {
		w.shown++
		return true
	}
	w.suppressed++
	return false
}

// remoteHost is remote's address without the port: a flood from one host
// uses many ports.
func remoteHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// suppressedCount is one key's count of lines not logged.
type suppressedCount struct {
	reason, source string
	n              int
}

// flush returns, sorted by reason and source, how many lines each key
// whose period has ended left unlogged, and starts those keys afresh.
func (l *logLimiter) flush(now time.Time) []suppressedCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []suppressedCount
	for key, w := range l.windows {
		if now.Sub(w.start) < logPeriod {
			continue
		}
		if w.suppressed > 0 {
			out = append(out, suppressedCount{key.reason, key.source, w.suppressed})
		}
		delete(l.windows, key)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].reason != out[j].reason {
			return out[i].reason < out[j].reason
		}
		return out[i].source < out[j].source
	})
	return out
}
