package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
)

// TestPeerMemberDown: when the peer's member is not listening, the link
// is refused and counted once per attempt, the local member sees a reset,
// and no sidecar retries on its own.
func TestPeerMemberDown(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		Members: []string{"mysql-1", "mysql-2"}, Channels: []string{"group"}})
	if err != nil {
		t.Fatal(err)
	}
	procs := startSidecars(t, g)
	c, err := dialMember(g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group"))
	if err == nil {
		defer c.Close()
		err = echoLine(c, "mysql-2", "anyone there?")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("member with its peer's member down: %v, want a reset", err)
	}
	refused := "http://" + g.Member("mysql-2").IP + ":9900/metrics"
	waitMetricSum(t, refused, `groupwire_inbound_refused_total{reason="unavailable"}`, 1)
	waitLog(t, procs["mysql-1"], "is not reachable")
	// One attempt, one refusal: a retry loop would keep counting. 2 s is
	// many times what a retry would take to show.
	time.Sleep(2 * time.Second)
	if n := metricSum(t, refused, `groupwire_inbound_refused_total{reason="unavailable"}`); n != 1 {
		t.Fatalf("%v refusals for one attempt: something retries on its own", n)
	}
}

// TestSidecarRestartWhileMemberRuns: a peer's sidecar goes away and comes
// back while both members keep running; the member's reconnects fail while
// it is away and succeed once it is back.
func TestSidecarRestartWhileMemberRuns(t *testing.T) {
	g, procs := hostileGroup(t, "")
	ping := func() error {
		_, err := g.Ping(context.Background(), "mysql-1", "mysql-2", "group", "hello")
		return err
	}
	if err := ping(); err != nil {
		t.Fatal(err)
	}
	stopProcess(t, procs["mysql-2"])
	if err := ping(); err == nil {
		t.Fatal("a ping got through with mysql-2's sidecar stopped")
	}
	back := startSidecar(t, g, "mysql-2")
	if err := ping(); err != nil {
		t.Fatalf("mysql-1's member cannot reach mysql-2 after its sidecar came back: %v\n%s", err, back.logs)
	}
}

// TestUnreadableCertFolderKeepsOldMaterial: mysql-1's sidecar runs as an
// unprivileged user (root reads any folder); its certificate folder becomes
// unreadable and SIGHUP reloads. The reload fails and says so, the last good
// material stays in force (new links still work), and once the folder is
// readable again the next reload succeeds.
func TestUnreadableCertFolderKeepsOldMaterial(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the sidecar as another user")
	}
	const nobody = 65534
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), AdminPort: 9900, NoEcho: true,
		Members: []string{"mysql-1", "mysql-2"}, Channels: []string{"group"}, ExtraYAML: "reload_interval: 1h\n"})
	if err != nil {
		t.Fatal(err)
	}
	shareWith(t, nobody, filepath.Dir(g.Dir), g.Dir, filepath.Dir(groupwireBinary(t)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	procs := map[string]*process{}
	for _, m := range g.Members {
		echo, err := localgroup.ListenEcho(ctx, m.Name, g.ServiceAddr(m.Name, "group"))
		if err != nil {
			t.Fatal(err)
		}
		defer echo.Close()
		var attr *syscall.SysProcAttr
		if m.Name == "mysql-1" {
			attr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		}
		procs[m.Name] = startProcessWith(t, attr, "run", "--config", g.ConfigPath, "--member", m.Name, "--log-format", "json")
		waitReady(t, "http://"+m.IP+":9900/readyz", procs[m.Name])
	}
	pki := g.CAs["group"].Dir
	metrics := "http://" + g.Member("mysql-1").IP + ":9900/metrics"
	if err := os.Chmod(pki, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(pki, 0o755)
	procs["mysql-1"].cmd.Process.Signal(syscall.SIGHUP)
	waitMetricSum(t, metrics, `groupwire_cert_reloads_total{result="failed"`, 1)
	waitLog(t, procs["mysql-1"], "permission denied")
	if n := metricSum(t, metrics, "groupwire_cert_reload_ok"); n != 0 {
		t.Fatalf("groupwire_cert_reload_ok = %v after a failed reload, want 0", n)
	}
	if _, err := g.Ping(ctx, "mysql-1", "mysql-2", "group", "old material"); err != nil {
		t.Fatalf("the last good material is not in force: %v\n%s", err, procs["mysql-1"].logs)
	}
	if err := os.Chmod(pki, 0o755); err != nil {
		t.Fatal(err)
	}
	procs["mysql-1"].cmd.Process.Signal(syscall.SIGHUP)
	waitMetricSum(t, metrics, "groupwire_cert_reload_ok", 1)
}

// shareWith gives uid the folders dirs (traverse and read) and every file
// below the last-but-one of them, as a deployment would own its material.
func shareWith(t *testing.T, uid int, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(dirs[1], func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, uid)
	})
	if err != nil {
		t.Fatal(fmt.Errorf("chown for uid %d: %w", uid, err))
	}
}

// TestStartChecksMaterialAsCheckDoes: `run` takes the reload's path at
// start: key material `groupwire check` refuses stops the sidecar from
// starting, with check's own words, and check's warnings (a key file others
// can read) are logged.
func TestStartChecksMaterialAsCheckDoes(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), IPPrefix: ipPrefix(), NoEcho: true,
		Members: []string{"mysql-1", "mysql-2"}, Channels: []string{"group"}})
	if err != nil {
		t.Fatal(err)
	}
	pki := g.CAs["group"]
	if err := os.Chmod(pki.KeyPath("mysql-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "run", "--config", g.ConfigPath, "--member", "mysql-1", "--log-format", "json")
	waitLog(t, p, "the private key can be read by")

	// mysql-2's certificate names someone else: VERIFY_IDENTITY cannot work.
	if err := pki.Issue("mysql-2", devpki.LeafTemplate{CommonName: "mysql-9", DNSNames: []string{"mysql-9"}}); err != nil {
		t.Fatal(err)
	}
	checked, err := runCmd(t, "check", "--config", g.ConfigPath, "--member", "mysql-2")
	if err == nil {
		t.Fatalf("check passed a certificate naming mysql-9 for mysql-2:\n%s", checked)
	}
	problem := checkProblemLine(t, checked, "channels.group.tls.ssl_cert ("+pki.CertPath("mysql-2")+")")
	out, err := runCmd(t, "run", "--config", g.ConfigPath, "--member", "mysql-2", "--log-format", "json")
	if err == nil || !strings.Contains(out, problem) {
		t.Fatalf("run with material check refuses: %v, want a refusal with check's line %q:\n%s", err, problem, out)
	}
}
