//go:build linux

package netns

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/testutil"
)

// netnsProc is one process started with `ip netns exec`, which execs the
// command in place, so the process is the groupwire binary itself. Its
// combined output is kept for assertions and failure messages.
type netnsProc struct {
	label string // e.g. "sidecar m2 (2nd start)"
	cmd   *exec.Cmd
	out   *testutil.LockedBuffer
	done  chan struct{} // closed once the process has been waited for
	err   error         // its exit status, set before done closes
	once  sync.Once
}

// startNetnsProc runs bin args... inside namespace ns. t.Cleanup stops it;
// a dying test binary takes it along (Pdeathsig).
func startNetnsProc(t *testing.T, ipPath, ns, label, bin string, args ...string) *netnsProc {
	t.Helper()
	p := &netnsProc{
		label: label,
		cmd:   exec.Command(ipPath, append([]string{"netns", "exec", ns, bin}, args...)...),
		out:   &testutil.LockedBuffer{},
		done:  make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", label, ns, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop kills the process and waits for it; calling it again does nothing.
func (p *netnsProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// status says whether the process still runs, or how it ended.
func (p *netnsProc) status() string {
	select {
	case <-p.done:
		return fmt.Sprintf("exited: %v", p.err)
	default:
		return "running"
	}
}

// running reports whether the process has not exited.
func (p *netnsProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// netnsGroup is a group of members, one per host of a topology, each with
// its sidecar (`groupwire run`) and a stand-in member (`groupwire member`)
// that pings the other members through 127.0.0.1.
type netnsGroup struct {
	t        *testing.T
	top      *netnsTopology
	bin      string
	config   string
	interval time.Duration

	mu       sync.Mutex
	sidecars map[string]*netnsProc
	members  map[string]*netnsProc
	all      []*netnsProc // every process ever started, for failure messages
	starts   map[string]int
}

func newNetnsGroup(t *testing.T, top *netnsTopology, bin, config string, interval time.Duration) *netnsGroup {
	return &netnsGroup{
		t: t, top: top, bin: bin, config: config, interval: interval,
		sidecars: map[string]*netnsProc{}, members: map[string]*netnsProc{}, starts: map[string]int{},
	}
}

// start runs member's sidecar and stand-in member in its host's namespace.
func (g *netnsGroup) start(member string) {
	g.t.Helper()
	ns := g.top.host(member).NS
	g.mu.Lock()
	defer g.mu.Unlock()
	g.starts[member]++
	n := g.starts[member]
	sc := startNetnsProc(g.t, g.top.ip, ns, fmt.Sprintf("sidecar %s (start %d)", member, n), g.bin,
		"run", "--config", g.config, "--member", member, "--log-format", "json")
	mb := startNetnsProc(g.t, g.top.ip, ns, fmt.Sprintf("member %s (start %d)", member, n), g.bin,
		"member", "--config", g.config, "--name", member, "--channel", "group", "--interval", g.interval.String())
	g.sidecars[member], g.members[member] = sc, mb
	g.all = append(g.all, sc, mb)
}

// stop kills member's sidecar and stand-in member.
func (g *netnsGroup) stop(member string) {
	g.mu.Lock()
	sc, mb := g.sidecars[member], g.members[member]
	g.mu.Unlock()
	mb.stop()
	sc.stop()
}

// sidecar returns member's current sidecar process.
func (g *netnsGroup) sidecar(member string) *netnsProc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sidecars[member]
}

// netnsMark is a point in the output of every process: what came before it
// is ignored by the queries that take it. A process started after the mark
// is read from its beginning.
type netnsMark map[*netnsProc]int

// mark returns the current end of every process's output.
func (g *netnsGroup) mark() netnsMark {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := netnsMark{}
	for _, p := range g.all {
		m[p] = len(p.out.String())
	}
	return m
}

// since returns p's complete output lines written after mark.
func (m netnsMark) since(p *netnsProc) []string {
	s := p.out.String()[m[p]:]
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil
	}
	return strings.Split(s, "\n")
}

// netnsPing is one result line of a stand-in member.
type netnsPing struct {
	From, To string
	OK       bool
	Line     string
}

// pings returns the ping results every member printed after mark, in
// order per member.
func (g *netnsGroup) pings(m netnsMark) []netnsPing {
	g.mu.Lock()
	procs := append([]*netnsProc(nil), g.all...)
	g.mu.Unlock()
	var res []netnsPing
	for _, p := range procs {
		for _, line := range m.since(p) {
			if !strings.HasPrefix(line, "ping ") {
				continue
			}
			fields := map[string]string{}
			for _, f := range strings.Fields(line) {
				if k, v, ok := strings.Cut(f, "="); ok {
					fields[k] = v
				}
			}
			res = append(res, netnsPing{From: fields["from"], To: fields["to"], OK: fields["result"] == "ok", Line: line})
		}
	}
	return res
}

// sidecarLog returns the lines member's current sidecar logged after mark
// that contain every one of parts.
func (g *netnsGroup) sidecarLog(m netnsMark, member string, parts ...string) []string {
	return linesWithAll(m.since(g.sidecar(member)), parts...)
}

// linesWithAll returns the lines that contain every one of parts.
func linesWithAll(lines []string, parts ...string) []string {
	var hits []string
	for _, line := range lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			hits = append(hits, line)
		}
	}
	return hits
}

// waitUntil polls cond every 50 ms until it reports done, or fails the
// test after limit with cond's last explanation and every process's output.
func (g *netnsGroup) waitUntil(limit time.Duration, what string, cond func() (done bool, missing string)) time.Duration {
	g.t.Helper()
	return netnsWaitUntil(g.t, limit, what, cond, g.dump)
}

// netnsWaitUntil polls cond every 50 ms until it reports done, and returns
// how long that took; after limit it fails t with cond's last explanation
// and dump's text.
func netnsWaitUntil(t *testing.T, limit time.Duration, what string, cond func() (bool, string), dump func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		done, missing := cond()
		if done {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v: %s\n%s", what, limit, missing, dump())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dump is the tail of every process's output, for failure messages.
func (g *netnsGroup) dump() string {
	g.mu.Lock()
	procs := append([]*netnsProc(nil), g.all...)
	g.mu.Unlock()
	return netnsDump(procs)
}

// netnsDump is the last 4,000 bytes of each process's output, labelled.
func netnsDump(procs []*netnsProc) string {
	var b strings.Builder
	for _, p := range procs {
		out := p.out.String()
		if len(out) > 4000 {
			out = "…" + out[len(out)-4000:]
		}
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", p.label, p.status(), out)
	}
	return b.String()
}

// netnsPair is an ordered pair of members: pings from From to To.
type netnsPair struct{ From, To string }

func (p netnsPair) String() string { return p.From + "→" + p.To }

// netnsPairs returns every ordered pair of distinct members.
func netnsPairs(members ...string) []netnsPair {
	var ps []netnsPair
	for _, a := range members {
		for _, b := range members {
			if a != b {
				ps = append(ps, netnsPair{a, b})
			}
		}
	}
	return ps
}

// netnsTally counts ok and failed pings per pair and keeps the last
// failure line of each pair.
type netnsTally struct {
	ok, fail map[netnsPair]int
	lastFail map[netnsPair]string
}

func netnsTallyPings(ps []netnsPing) netnsTally {
	t := netnsTally{ok: map[netnsPair]int{}, fail: map[netnsPair]int{}, lastFail: map[netnsPair]string{}}
	for _, p := range ps {
		k := netnsPair{p.From, p.To}
		if p.OK {
			t.ok[k]++
		} else {
			t.fail[k]++
			t.lastFail[k] = p.Line
		}
	}
	return t
}

// netnsLacking lists the pairs for which has is false, or "" when none.
func netnsLacking(pairs []netnsPair, has func(netnsPair) bool) string {
	var miss []string
	for _, p := range pairs {
		if !has(p) {
			miss = append(miss, p.String())
		}
	}
	sort.Strings(miss)
	return strings.Join(miss, " ")
}
