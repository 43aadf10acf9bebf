package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
)

// row is one line of the results table: a metric of a test.
type row struct {
	test, metric, label string
	higherBetter        bool
}

// scored says whether a row is a score to compare pairs on; the kernel
// share, the RSS left after closing, how busy the host was and the syscall
// and wake-up counts
// describe where a cost lies, and the best peer is not chosen by them.
func (r row) scored() bool {
	return r.metric != "cpu_sys_share" && r.metric != "rss_after_close_kib" && r.metric != "host_busy" &&
		!strings.HasPrefix(r.metric, "sc_") && !strings.HasPrefix(r.metric, "wakeups")
}

// rows are the table's lines, in order.
var rows = []row{
	{"bulk-up-1", "gbit_s", "bulk →, 1 stream (Gbit/s)", true},
	{"bulk-down-1", "gbit_s", "bulk ←, 1 stream (Gbit/s)", true},
	{"bulk-up-8", "gbit_s", "bulk →, 8 streams (Gbit/s)", true},
	{"bulk-down-8", "gbit_s", "bulk ←, 8 streams (Gbit/s)", true},
	{"bulk-up-1", "cpu_s_per_gb", "pair CPU s/GB, bulk → 1 stream", false},
	{"bulk-down-1", "cpu_s_per_gb", "pair CPU s/GB, bulk ← 1 stream", false},
	{"bulk-up-8", "cpu_s_per_gb", "pair CPU s/GB, bulk → 8 streams", false},
	{"bulk-up-1", "cpu_sys_share", "kernel share of that CPU, bulk → 1 stream", false},
	{"pp-1", "p50_us", "ping-pong 1 link p50 (µs)", false},
	{"pp-1", "p99_us", "ping-pong 1 link p99 (µs)", false},
	{"pp-1", "p999_us", "ping-pong 1 link p99.9 (µs)", false},
	{"pp-1", "cpu_us_per_msg", "pair CPU µs/msg, 1 link", false},
	{"pp-16", "msgs_s", "ping-pong 16 links (msgs/s)", true},
	{"pp-16", "p99_us", "ping-pong 16 links p99 (µs)", false},
	{"pp-16", "cpu_us_per_msg", "pair CPU µs/msg, 16 links", false},
	{"pp-16", "cpu_sys_share", "kernel share of that CPU, 16 links", false},
	{"connect", "links_s", "new links/s, 8 dialers", true},
	{"connect", "p50_us", "link setup p50 (µs)", false},
	{"connect", "p99_us", "link setup p99 (µs)", false},
	{"connect", "cpu_us_per_link", "pair CPU µs/link", false},
	{"idle", "kib_per_link", "RSS per idle link, pair (KiB; the largest round: first touch)", false},
	{"idle", "rss_after_close_kib", "RSS left after closing, pair (KiB)", false},
	{"bulk-up-1", "sc_all_per_mib", "syscalls per MiB, bulk → 1 stream (pair)", false},
	{"bulk-down-1", "sc_all_per_mib", "syscalls per MiB, bulk ← 1 stream (pair)", false},
	{"bulk-up-1", "wakeups_per_mib", "wake-ups per MiB, bulk → 1 stream (pair)", false},
	{"bulk-down-1", "wakeups_per_mib", "wake-ups per MiB, bulk ← 1 stream (pair)", false},
	{"pp-1", "sc_all_per_msg", "syscalls per message, 1 link (pair)", false},
	{"pp-1", "wakeups_per_msg", "wake-ups per message, 1 link (pair)", false},
	{"pp-16", "sc_all_per_msg", "syscalls per message, 16 links (pair)", false},
	{"pp-16", "wakeups_per_msg", "wake-ups per message, 16 links (pair)", false},
	{"etcd-put", "puts_s", "etcd puts/s (256 B values, through the leader)", true},
	{"etcd-put", "p50_ms", "etcd put p50 (ms)", false},
	{"etcd-put", "p99_ms", "etcd put p99 (ms)", false},
	{"etcd-put", "host_cpu_us_per_put", "host CPU µs per put (the whole group, its tunnels and the load)", false},
	{"etcd-put", "tunnel_cpu_us_per_put", "tunnels' CPU µs per put (3 sidecars or haproxies)", false},
	{"etcd-put", "host_busy", "host CPU busy (share of all CPUs)", false},
	{"etcd-put-paced", "puts_s", "paced: etcd puts/s (the rate asked for, if kept up)", true},
	{"etcd-put-paced", "p50_ms", "paced: etcd put p50 (ms, from when due)", false},
	{"etcd-put-paced", "p99_ms", "paced: etcd put p99 (ms, from when due)", false},
	{"etcd-put-paced", "host_cpu_us_per_put", "paced: host CPU µs per put", false},
	{"etcd-put-paced", "tunnel_cpu_us_per_put", "paced: tunnels' CPU µs per put", false},
	{"etcd-put-paced", "host_busy", "paced: host CPU busy (share of all CPUs)", false},
	{"galera-oltp", "tps", "Galera sysbench oltp_write_only TPS", true},
	{"galera-oltp", "p95_ms", "Galera sysbench p95 latency (ms)", false},
	{"galera-oltp", "host_cpu_us_per_tx", "host CPU µs per transaction (the whole group, its tunnels and sysbench)", false},
	{"galera-oltp", "tunnel_cpu_us_per_tx", "tunnels' CPU µs per transaction (3 sidecars or haproxies)", false},
	{"galera-oltp", "host_busy", "host CPU busy (share of all CPUs)", false},
	{"galera-oltp-paced", "tps", "paced: Galera TPS (the rate asked for, if kept up)", true},
	{"galera-oltp-paced", "p95_ms", "paced: Galera p95 latency (ms)", false},
	{"galera-oltp-paced", "host_cpu_us_per_tx", "paced: host CPU µs per transaction", false},
	{"galera-oltp-paced", "tunnel_cpu_us_per_tx", "paced: tunnels' CPU µs per transaction", false},
	{"galera-oltp-paced", "host_busy", "paced: host CPU busy (share of all CPUs)", false},
}

// syscallKinds are the syscalls broken down per test in the profile table.
var syscallKinds = []string{"read", "write", "recvfrom", "sendto", "epoll_pwait", "futex", "nanosleep"}

// reportMain reads JSON results and writes the Markdown report.
func reportMain(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "", "results file: one JSON result per line (from gwload run)")
	out := fs.String("out", "RESULTS.md", "Markdown file to write")
	pairs := fs.String("pairs", "direct,socat,gw-disabled,gw-verify,stunnel", "pair columns, in order")
	peers := fs.String("peers", "stunnel,haproxy,ghostunnel", "the peer pairs groupwire is compared with: the best of them in each row is the reference")
	gw := fs.String("gw", "gw-verify", "the groupwire TLS pair the targets apply to")
	gwPlain := fs.String("gw-plain", "gw-disabled", "the groupwire plaintext pair")
	floor := fs.String("floor", "socat", "the plaintext floor")
	notes := fs.String("notes", "", "file whose text is added under the machine (versions, mode)")
	title := fs.String("title", "groupwire benchmark results", "the report's heading")
	script := fs.String("script", "bench/run.sh", "the script named as the report's writer")
	ratios := fs.String("ratios", "", "extra ratio tables, comma-separated PAIR/REF (e.g. gw-dropin/gw-loopback)")
	_ = fs.Parse(args)
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	res, err := readResults(f)
	if err != nil {
		return fmt.Errorf("report %s: %w", *in, err)
	}
	var extra string
	if *notes != "" {
		b, err := os.ReadFile(*notes)
		if err != nil {
			return fmt.Errorf("report -notes: %w", err)
		}
		extra = string(b)
	}
	t := newTable(res)
	var b strings.Builder
	cols := strings.Split(*pairs, ",")
	cols = slices.DeleteFunc(cols, func(p string) bool { return !t.hasPair(p) })
	cmp := comparison{peers: strings.FieldsFunc(*peers, isComma), gw: *gw, gwPlain: *gwPlain, floor: *floor,
		title: *title, script: *script, ratios: strings.FieldsFunc(*ratios, isComma)}
	writeReport(&b, t, cols, cmp, extra)
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func isComma(r rune) bool { return r == ',' }

func readResults(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// table holds every sample of every (pair, test, metric).
type table struct {
	samples map[[3]string][]float64
	rounds  int
}

func newTable(res []result) *table {
	t := &table{samples: make(map[[3]string][]float64)}
	for _, r := range res {
		for k, v := range r.Metrics {
			key := [3]string{r.Pair, r.Test, k}
			t.samples[key] = append(t.samples[key], v)
		}
		t.rounds = max(t.rounds, r.Round)
	}
	return t
}

func (t *table) hasPair(p string) bool {
	for k := range t.samples {
		if k[0] == p {
			return true
		}
	}
	return false
}

// median of the samples of (pair, test, metric); ok is false without any.
// The memory per idle link is the exception: it takes the largest sample,
// the first touch. A process that keeps freed memory in pools (haproxy
// does) needs it only in its first round and shows a few KiB afterwards,
// which is not what a link costs it.
func (t *table) median(pair, test, metric string) (float64, bool) {
	s := slices.Clone(t.samples[[3]string{pair, test, metric}])
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	if metric == "kib_per_link" {
		return s[len(s)-1], true
	}
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// ratio is pair's median over ref's; ok is false if either is missing.
func (t *table) ratio(pair, ref, test, metric string) (float64, bool) {
	a, ok1 := t.median(pair, test, metric)
	b, ok2 := t.median(ref, test, metric)
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return a / b, true
}

// comparison names the pairs the report compares: groupwire's TLS and
// plaintext pairs, the plaintext floor, and the peers.
type comparison struct {
	peers              []string
	gw, gwPlain, floor string
	title, script      string
	ratios             []string // PAIR/REF: a table of PAIR ÷ REF each
}

func writeReport(b *strings.Builder, t *table, cols []string, cmp comparison, extra string) {
	fmt.Fprintf(b, "# %s\n\nWritten by `%s` (gwload report). Medians of %d alternating round(s); every pair measured in the same run.\n\n", cmp.title, cmp.script, t.rounds)
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(b, "- nproc: %d\n- CPU: %s\n- kernel: %s\n- Go: %s\n", runtime.NumCPU(), cpuModel(), kernel(), runtime.Version())
	if extra != "" {
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			b.WriteString("\n")
		}
	}
	if skipped := t.missing(cmp.peers); len(skipped) > 0 {
		fmt.Fprintf(b, "- skipped (not measured in this run): %s\n", strings.Join(skipped, ", "))
	}
	b.WriteString("\n## Medians\n\n")
	writeGrid(b, cols, func(r row, p string) string {
		v, ok := t.median(p, r.test, r.metric)
		if !ok {
			return "–"
		}
		return format(v)
	})
	if slices.Contains(cols, "direct") {
		b.WriteString("\n## Ratio to direct (pair ÷ direct)\n\n")
		writeGrid(b, cols, func(r row, p string) string {
			v, ok := t.ratio(p, "direct", r.test, r.metric)
			if !ok {
				return "–"
			}
			return fmt.Sprintf("%.2f×", v)
		})
	}
	for _, r := range cmp.ratios {
		pair, ref, _ := strings.Cut(r, "/")
		writeRatio(b, t, pair, ref)
	}
	if len(cmp.peers) > 0 {
		writeBestPeer(b, t, cmp)
		writeTargets(b, t, cmp)
	}
	writeSyscalls(b, t, cols)
}

// writeRatio writes one column of pair ÷ ref, for the rows both measured.
func writeRatio(b *strings.Builder, t *table, pair, ref string) {
	fmt.Fprintf(b, "\n## %s ÷ %s\n\n| metric | %s | %s | ratio |\n|---|---:|---:|---:|\n", pair, ref, ref, pair)
	for _, r := range rows {
		v, ok1 := t.median(pair, r.test, r.metric)
		w, ok2 := t.median(ref, r.test, r.metric)
		if ok1 && ok2 && w != 0 && r.scored() {
			fmt.Fprintf(b, "| %s | %s | %s | %.2f× |\n", r.label, format(w), format(v), v/w)
		}
	}
}

// writeSyscalls breaks the syscalls of the perf runs (PERF=1) down by kind:
// per MiB on the bulk tests, per message on the ping-pong ones.
func writeSyscalls(b *strings.Builder, t *table, cols []string) {
	var lines []string
	for _, tu := range [][2]string{{"bulk-up-1", "mib"}, {"bulk-down-1", "mib"}, {"pp-1", "msg"}, {"pp-16", "msg"}} {
		for _, p := range cols {
			line := fmt.Sprintf("| %s | %s |", tu[0], p)
			any := false
			for _, k := range syscallKinds {
				v, ok := t.median(p, tu[0], "sc_"+k+"_per_"+tu[1])
				cell := "–"
				if ok {
					cell, any = format(v), true
				}
				line += " " + cell + " |"
			}
			if any {
				lines = append(lines, line)
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\n## Syscalls by kind (perf stat, both proxies of the pair; per MiB on bulk, per message on ping-pong)\n\n| test | pair |")
	for _, k := range syscallKinds {
		fmt.Fprintf(b, " %s |", k)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(syscallKinds)) + "\n")
	b.WriteString(strings.Join(lines, "\n") + "\n")
}

// bestPeer is the peer with the best median of (test, metric): the highest
// or the lowest, as the row says.
func (t *table) bestPeer(peers []string, r row) (string, float64, bool) {
	best, bestV, found := "", 0.0, false
	for _, p := range peers {
		v, ok := t.median(p, r.test, r.metric)
		if !ok {
			continue
		}
		if !found || (r.higherBetter && v > bestV) || (!r.higherBetter && v < bestV) {
			best, bestV, found = p, v, true
		}
	}
	return best, bestV, found
}

// missing returns the pairs of which the table holds no sample.
func (t *table) missing(pairs []string) []string {
	var out []string
	for _, p := range pairs {
		if !t.hasPair(p) {
			out = append(out, p)
		}
	}
	return out
}

// writeBestPeer writes, per row, the best peer and groupwire's ratio to it.
func writeBestPeer(b *strings.Builder, t *table, cmp comparison) {
	fmt.Fprintf(b, "\n## %s against the best peer of each row\n\n", cmp.gw)
	fmt.Fprintf(b, "Peers: %s. The ratio is %s ÷ best; below 1 is better where lower is.\n\n", strings.Join(cmp.peers, ", "), cmp.gw)
	b.WriteString("| metric | best peer | its median | " + cmp.gw + " | ratio |\n|---|---|---:|---:|---:|\n")
	for _, r := range rows {
		if !r.scored() {
			continue
		}
		peer, pv, ok := t.bestPeer(cmp.peers, r)
		gv, gok := t.median(cmp.gw, r.test, r.metric)
		if !ok || !gok || pv == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %.2f× |\n", r.label, peer, format(pv), format(gv), gv/pv)
	}
}

func writeGrid(b *strings.Builder, cols []string, cell func(row, string) string) {
	b.WriteString("| metric |")
	for _, c := range cols {
		fmt.Fprintf(b, " %s |", c)
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		line := fmt.Sprintf("| %s |", r.label)
		filled := false
		for _, c := range cols {
			v := cell(r, c)
			filled = filled || v != "–"
			line += " " + v + " |"
		}
		if filled {
			b.WriteString(line + "\n")
		}
	}
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// target is one goal of the performance issue, checked against the medians.
type target struct {
	name    string
	value   func() (float64, string, bool) // the measured ratio and what it was taken against
	limit   float64
	atLeast bool
}

// targets are the goals against the best peer of each row, and the
// plaintext pair's against the plaintext floor.
func targets(t *table, cmp comparison) []target {
	vsBest := func(test, metric string) func() (float64, string, bool) {
		return func() (float64, string, bool) {
			i := slices.IndexFunc(rows, func(r row) bool { return r.test == test && r.metric == metric })
			peer, pv, ok := t.bestPeer(cmp.peers, rows[i])
			gv, gok := t.median(cmp.gw, test, metric)
			if !ok || !gok || pv == 0 {
				return 0, "", false
			}
			return gv / pv, peer, true
		}
	}
	vs := func(pair, base, test, metric string) func() (float64, string, bool) {
		return func() (float64, string, bool) {
			v, ok := t.ratio(pair, base, test, metric)
			return v, base, ok
		}
	}
	return []target{
		{"bulk →, 1 stream", vsBest("bulk-up-1", "gbit_s"), 1.3, true},
		{"bulk ←, 1 stream", vsBest("bulk-down-1", "gbit_s"), 1.3, true},
		{"pair CPU s/GB, bulk → 1 stream", vsBest("bulk-up-1", "cpu_s_per_gb"), 0.7, false},
		{"pair CPU s/GB, bulk ← 1 stream", vsBest("bulk-down-1", "cpu_s_per_gb"), 0.7, false},
		{"16-link msgs/s", vsBest("pp-16", "msgs_s"), 1.2, true},
		{"ping-pong 1 link p50", vsBest("pp-1", "p50_us"), 0.9, false},
		{"new links/s", vsBest("connect", "links_s"), 1.5, true},
		{"RSS per idle link, pair", vsBest("idle", "kib_per_link"), 0.7, false},
		{cmp.gwPlain + " bulk →", vs(cmp.gwPlain, cmp.floor, "bulk-up-1", "gbit_s"), 1.0, true},
		{cmp.gwPlain + " bulk ←", vs(cmp.gwPlain, cmp.floor, "bulk-down-1", "gbit_s"), 1.0, true},
	}
}

func writeTargets(b *strings.Builder, t *table, cmp comparison) {
	fmt.Fprintf(b, "\n## Targets (%s unless named, against the best peer of the row)\n\n| target | goal | against | measured | met |\n|---|---|---|---:|---|\n", cmp.gw)
	for _, tg := range targets(t, cmp) {
		goal := fmt.Sprintf("≤ %.2f×", tg.limit)
		if tg.atLeast {
			goal = fmt.Sprintf("≥ %.2f×", tg.limit)
		}
		v, against, ok := tg.value()
		if !ok {
			fmt.Fprintf(b, "| %s | %s | – | – | not measured |\n", tg.name, goal)
			continue
		}
		met := (tg.atLeast && v >= tg.limit) || (!tg.atLeast && v <= tg.limit)
		verdict := "yes"
		if !met {
			verdict = fmt.Sprintf("**no**, by %.0f%%", 100*abs(v-tg.limit)/tg.limit)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.2f× | %s |\n", tg.name, goal, against, v, verdict)
	}
	if v, ok := t.median(cmp.gw, "idle", "rss_after_close_kib"); ok {
		fmt.Fprintf(b, "\nRSS after the idle links closed: %+.0f KiB over the pair's baseline (flat means close to 0 against the held links' total).\n", v)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
