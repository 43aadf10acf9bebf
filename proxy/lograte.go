package proxy

import (
	"sort"
	"sync"
	"time"
)

// logLimiter keeps a flood of refusals from filling the disk: per reason,
// it lets logBurst lines through in each logPeriod and counts the rest,
// which flush hands over for one "N more suppressed" line.
type logLimiter struct {
	mu      sync.Mutex
	windows map[string]*logWindow
}

// logWindow is one reason's current period.
type logWindow struct {
	start      time.Time
	shown      int
	suppressed int
}

const (
	logBurst  = 10
	logPeriod = 10 * time.Second
)

func newLogLimiter() *logLimiter { return &logLimiter{windows: make(map[string]*logWindow)} }

// allow reports whether a line about reason may be logged now.
func (l *logLimiter) allow(reason string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[reason]
	if w == nil || now.Sub(w.start) >= logPeriod && w.suppressed == 0 {
		w = &logWindow{start: now}
		l.windows[reason] = w
	}
	if w.shown < logBurst {
		w.shown++
		return true
	}
	w.suppressed++
	return false
}

// suppressedCount is one reason's count of lines not logged.
type suppressedCount struct {
	reason string
	n      int
}

// flush returns, sorted by reason, how many lines each reason whose period
// has ended left unlogged, and starts those reasons afresh.
func (l *logLimiter) flush(now time.Time) []suppressedCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []suppressedCount
	for reason, w := range l.windows {
		if now.Sub(w.start) < logPeriod {
			continue
		}
		if w.suppressed > 0 {
			out = append(out, suppressedCount{reason, w.suppressed})
		}
		delete(l.windows, reason)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].reason < out[j].reason })
	return out
}
