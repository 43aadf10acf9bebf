package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(echoDialEnv); spec != "" {
		echoDialChild(spec)
	}
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// groupwireBinary is the groupwire command, built once for the process tests.
func groupwireBinary(t *testing.T) string { return testutil.Groupwire(t) }

// runCmd runs the built binary and returns its combined output and error.
func runCmd(t *testing.T, args ...string) (string, error) { return testutil.RunGroupwire(t, args...) }

func TestVersionAndUsage(t *testing.T) {
	out, err := runCmd(t, "version")
	if err != nil || !strings.HasPrefix(out, "groupwire ") {
		t.Fatalf("version: %v %q", err, out)
	}
	out, err = runCmd(t, "frobnicate")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v %q", err, out)
	}
	out, err = runCmd(t, "run", "--member", "mysql-1")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, "--config and --member are required") {
		t.Fatalf("run without config: %v %q", err, out)
	}
}

func ipPrefix() string { return fmt.Sprintf("127.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250)) }

// TestCheckCommand: check prints every member's plan for a good file and
// names each problem of a bad one, exiting non-zero.
func TestCheckCommand(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "check", "--config", g.ConfigPath)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{"member mysql-1", "member mysql-3", "channel recovery: VERIFY_IDENTITY", "\nok\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// mysql-2's certificate names someone else: check must say so.
	pki := g.CAs["group"]
	if err := pki.Issue("mysql-2", devpkiLeaf("mysql-9")); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "check", "--config", g.ConfigPath, "--member", "mysql-2")
	if err == nil || !strings.Contains(out, "mysql-2") || !strings.Contains(out, "ssl_cert") {
		t.Fatalf("check with a wrong identity: %v\n%s", err, out)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/check/*.golden")

// TestCheckGolden: check's complete output on invalid files, stdout,
// stderr and exit status, against testdata/check/NAME.golden. Each problem
// appears once and the count agrees with the list.
func TestCheckGolden(t *testing.T) {
	bin := groupwireBinary(t)
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/check/*.yaml: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			got := checkTranscript(t, bin, filepath.Base(file))
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run CheckGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("check --config %s:\n%s\nwant (%s):\n%s", file, got, golden, want)
			}
		})
	}
}

// checkTranscript runs `groupwire check --config file` in testdata/check
// and returns its stdout, stderr and exit status as one text.
func checkTranscript(t *testing.T, bin, file string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "--config", file)
	cmd.Dir = filepath.Join("testdata", "check")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return fmt.Sprintf("== stdout\n%s== stderr\n%s== exit %d\n", stdout.String(), stderr.String(), cmd.ProcessState.ExitCode())
}

// TestCertsCommands: init, issue, revoke make files that OpenSSL accepts
// and then rejects as revoked.
func TestCertsCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if out, err := runCmd(t, "certs", "init", "--dir", dir, "--members", "db-1,db-2", "--ip", "db-1=127.0.0.11"); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "certs", "init", "--dir", dir, "--members", "db-1,db-2"); err == nil || !strings.Contains(out, "exist") {
		t.Fatalf("certs init over existing files: %v\n%s", err, out)
	}
	out, err := runCmd(t, "certs", "init", "--dir", dir, "--members", "db-1,db-2,db-4", "--keep-existing")
	if err != nil || !strings.Contains(out, "db-4.pem") || strings.Contains(out, "db-1.pem") {
		t.Fatalf("certs init --keep-existing: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "db-1-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if out, err := runCmd(t, "certs", "issue", "--dir", dir, "db-3"); err != nil {
		t.Fatalf("certs issue: %v\n%s", err, out)
	}
	bundleRefusesMemberCertificates(t, dir)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	verify := func() (string, error) {
		out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", filepath.Join(dir, "ca.pem"),
			"-CRLfile", filepath.Join(dir, "crl.pem"), filepath.Join(dir, "db-3.pem")).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(); err != nil {
		t.Fatalf("openssl verify before revoke: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "certs", "revoke", "--dir", dir, "db-3"); err != nil {
		t.Fatalf("certs revoke: %v\n%s", err, out)
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("openssl verify after revoke: %v\n%s", err, out)
	}
}

// bundleRefusesMemberCertificates: certs bundle puts CA certificates in
// an ssl_ca bundle, and refuses a member's certificate, naming its file.
func bundleRefusesMemberCertificates(t *testing.T, dir string) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "cas.pem")
	out, err := runCmd(t, "certs", "bundle", "--out", bundle, dir)
	if err != nil || !strings.Contains(out, "wrote 1 CA certificate(s)") {
		t.Fatalf("certs bundle of a CA folder: %v\n%s", err, out)
	}
	member := filepath.Join(dir, "db-3.pem")
	out, err = runCmd(t, "certs", "bundle", "--out", bundle, dir, member)
	if err == nil || !strings.Contains(out, member+": certificate #1") || !strings.Contains(out, "is not a CA certificate") {
		t.Fatalf("certs bundle with a member certificate: %v\n%s", err, out)
	}
}

// TestDemo: the README's first command shows the pair table, one compact
// line per interval when not on a terminal; --revoke-after revokes mysql-3
// while the group runs, and the table shows its pairs down with the reason
// while the pair between the other two stays up.
func TestDemo(t *testing.T) {
	out, err := runCmd(t, "demo", "--duration", "5s", "--interval", "500ms", "--revoke-after", "2500ms", "--ip-prefix", ipPrefix())
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	before, after, revoked := strings.Cut(out, "revoked mysql-3's certificates")
	if !revoked {
		t.Fatalf("demo never revoked mysql-3:\n%s", out)
	}
	allUp := "mysql-1→mysql-2 up up  mysql-1→mysql-3 up up  mysql-2→mysql-1 up up  mysql-2→mysql-3 up up  mysql-3→mysql-1 up up  mysql-3→mysql-2 up up"
	if !strings.Contains(before, allUp) {
		t.Errorf("before the revocation, no line shows every pair up:\n%s", before)
	}
	cutOff := regexp.MustCompile(`mysql-1→mysql-2 up up  mysql-1→mysql-3 DOWN DOWN  mysql-2→mysql-1 up up  mysql-2→mysql-3 DOWN DOWN`)
	if !cutOff.MatchString(after) {
		t.Errorf("after the revocation, no line shows mysql-3's pairs down and mysql-1↔mysql-2 up:\n%s", after)
	}
	if !strings.Contains(after, "mysql-1 → mysql-3 [group] DOWN: ") || !strings.Contains(after, "is revoked") {
		t.Errorf("the demo does not say why mysql-3's pairs went down:\n%s", after)
	}
	if n := strings.Count(out, "\n"); n > 40 {
		t.Errorf("%d lines in 5 s: the output should not scroll away", n)
	}
	if !strings.Contains(out, "demo stopped") {
		t.Errorf("demo did not stop cleanly:\n%s", out)
	}
}

// process is one `groupwire run` child process.
type process struct {
	cmd  *exec.Cmd
	logs *testutil.LockedBuffer
	done chan error
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	return startProcessWith(t, nil, args...)
}

// startProcessWith starts the binary with attr (nil for none), stopped
// when the test ends.
func startProcessWith(t *testing.T, attr *syscall.SysProcAttr, args ...string) *process {
	t.Helper()
	cmd := exec.Command(groupwireBinary(t), args...)
	cmd.SysProcAttr = attr
	return startCmd(t, cmd)
}

// startCmd starts cmd, its output kept, and stops it when the test ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, logs: &testutil.LockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// startSidecar runs `groupwire run` for member of g and waits until its
// admin endpoint (port 9900) says ready.
func startSidecar(t *testing.T, g *localgroup.Group, member string) *process {
	t.Helper()
	p := startProcess(t, "run", "--config", g.ConfigPath, "--member", member, "--log-format", "json")
	waitReady(t, "http://"+g.Member(member).IP+":9900/readyz", p)
	return p
}

// startSidecars starts every member's sidecar, as startSidecar does.
func startSidecars(t *testing.T, g *localgroup.Group) map[string]*process {
	t.Helper()
	procs := map[string]*process{}
	for _, m := range g.Members {
		procs[m.Name] = startSidecar(t, g, m.Name)
	}
	return procs
}

func waitReady(t *testing.T, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup, which waits for it
			t.Fatalf("sidecar exited: %v\n%s", err, p.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s never ready\n%s", url, p.logs)
}

// TestProcessGroup runs the three sidecars as real processes from one
// cluster file: every pair talks, a killed sidecar's links are cut at once,
// SIGHUP reloads, SIGTERM drains: live links keep working until they end,
// then the process exits 0.
func TestProcessGroup(t *testing.T) {
	g, procs := startProcessGroup(t)
	killedSidecarCutsLinks(t, g, procs["mysql-3"])
	sighupReloads(t, g, procs["mysql-1"])
	sigtermDrains(t, g, procs["mysql-1"])
}

// startProcessGroup starts a `groupwire run` per member, with echo services
// standing in for the members, and checks that every pair talks.
func startProcessGroup(t *testing.T) (*localgroup.Group, map[string]*process) {
	// reload_interval 1h: no periodic re-check runs during the test, so every
	// reload counted on /metrics is one the test caused.
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		ExtraYAML: "reload_interval: 1h\n"})
	if err != nil {
		t.Fatal(err)
	}
	startEchoes(t, g)
	procs := map[string]*process{}
	for _, m := range g.Members {
		procs[m.Name] = startProcess(t, "run", "--config", g.ConfigPath, "--member", m.Name, "--log-format", "json")
	}
	for _, m := range g.Members {
		waitReady(t, "http://"+m.IP+":9900/readyz", procs[m.Name])
	}
	for _, from := range g.Members {
		for _, to := range g.Members {
			for _, ch := range g.Channels {
				if from.Name == to.Name {
					continue
				}
				if _, err := g.Ping(t.Context(), from.Name, to.Name, ch, "hi"); err != nil {
					t.Fatalf("%s → %s [%s]: %v\n%s", from.Name, to.Name, ch, err, procs[from.Name].logs)
				}
			}
		}
	}
	return g, procs
}

// startEchoes runs an echo service on every member's service port of
// every channel, until the test ends.
func startEchoes(t *testing.T, g *localgroup.Group) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, m := range g.Members {
		for _, ch := range g.Channels {
			echo, err := localgroup.ListenEcho(ctx, m.Name, g.ServiceAddr(m.Name, ch))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(echo.Close)
		}
	}
}

// killedSidecarCutsLinks: a sidecar that dies cuts its links at once on
// the other side.
func killedSidecarCutsLinks(t *testing.T, g *localgroup.Group, p3 *process) {
	c3, err := dialMember(g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-3", "recovery"))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	fmt.Fprintln(c3, "hello 3")
	c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	r3 := bufio.NewReader(c3)
	if line, err := r3.ReadString('\n'); err != nil || line != "mysql-3: hello 3\n" {
		t.Fatalf("mysql-2 → mysql-3: %q %v", line, err)
	}
	p3.cmd.Process.Kill()
	killed := time.Now()
	c3.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r3.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("mysql-2's member still connected after mysql-3's sidecar died: %v", err)
	}
	t.Logf("link cut %v after the peer sidecar was killed", time.Since(killed).Round(time.Millisecond))
}

// sighupReloads: SIGHUP makes the sidecar reload every channel's material
// and re-read the cluster file: unchanged, it is counted as unchanged;
// changed where the file watch cannot see it, the change is applied.
func sighupReloads(t *testing.T, g *localgroup.Group, p1 *process) {
	metrics := "http://" + g.Member("mysql-1").IP + ":9900/metrics"
	reloads := func(result string) float64 {
		return metricSum(t, metrics, `groupwire_config_reloads_total{result="`+result+`"}`)
	}
	certsBefore, unchanged, ok := metricSum(t, metrics, "groupwire_cert_reloads_total"), reloads("unchanged"), reloads("ok")
	p1.cmd.Process.Signal(syscall.SIGHUP)
	waitMetricSum(t, metrics, `groupwire_config_reloads_total{result="unchanged"}`, unchanged+1)
	// One reload per channel's store (group and recovery): the counter only
	// moves when Sidecar.Reload really ran ReloadAll.
	waitMetricSum(t, metrics, "groupwire_cert_reloads_total", certsBefore+float64(len(g.Channels)))

	// inotify does not report writes made through mmap (inotify(7)), so
	// only SIGHUP can find this change.
	editUnseen(t, g.ConfigPath, "reload_interval: 1h", "reload_interval: 2h")
	p1.cmd.Process.Signal(syscall.SIGHUP)
	waitMetricSum(t, metrics, `groupwire_config_reloads_total{result="ok"}`, ok+1)
	if n := reloads("unchanged"); n != unchanged+1 {
		t.Fatalf("the changed file was counted unchanged (%v, want %v): SIGHUP did not apply it", n, unchanged+1)
	}
	waitLog(t, p1, `"settings_changed":["reload_interval"]`)
}

// editUnseen replaces old with new, of the same length, in the file at
// path through a shared memory mapping, which file watches do not see.
func editUnseen(t *testing.T, path, old, new string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	i := bytes.Index(mem, []byte(old))
	if i < 0 || len(old) != len(new) {
		t.Fatalf("test bug: %q not in %s, or not as long as %q", old, path, new)
	}
	copy(mem[i:], new)
}

// sigtermDrains: a live link from mysql-2 into mysql-1 survives mysql-1's
// SIGTERM until mysql-2's member closes it; then the process exits 0.
func sigtermDrains(t *testing.T, g *localgroup.Group, p1 *process) {
	c, err := dialMember(g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-1", "group"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip := func(msg string) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintln(c, msg); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != "mysql-1: "+msg+"\n" {
			return fmt.Errorf("echo %q", line)
		}
		return nil
	}
	if err := roundTrip("before"); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Process.Signal(syscall.SIGTERM)
	waitNotReady(t, "http://"+g.Member("mysql-1").IP+":9900/readyz")
	if err := roundTrip("while draining"); err != nil {
		t.Fatalf("live link broken by drain: %v\n%s", err, p1.logs)
	}
	c.Close()
	select {
	case err := <-p1.done:
		p1.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("sidecar exit: %v\n%s", err, p1.logs)
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("sidecar did not exit after its last link closed\n%s", p1.logs)
	}
	waitLog(t, p1, "sidecar stopped")
}

// metricSum fetches a Prometheus text page and returns the sum of every
// sample of the metric family name, whatever its labels; a name that
// carries a label prefix (`family{cause="x"`) sums the samples it starts.
func metricSum(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") && !(strings.Contains(name, "{") && strings.HasPrefix(line, name)) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", url, line, err)
		}
		sum += v
	}
	return sum
}

// waitMetricSum waits until metricSum reaches at least want. The bound is
// generous: the reload it waits for takes milliseconds.
func waitMetricSum(t *testing.T, url, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricSum(t, url, name)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %v, want at least %v", url, name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func waitLog(t *testing.T, p *process, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitNotReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s still ready after SIGTERM", url)
}

func devpkiLeaf(name string) devpki.LeafTemplate {
	return devpki.LeafTemplate{CommonName: name, DNSNames: []string{name}}
}

func dialMember(g *localgroup.Group, member, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(g.Member(member).IP)}}
	return d.Dial("tcp", addr)
}
