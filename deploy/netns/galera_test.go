//go:build linux

package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/testutil"
)

// galeraPorts are Galera's own ports, the same on every node: group
// communication, IST and SST (rsync).
var galeraPorts = map[string]string{"gcomm": "4567", "ist": "4568", "sst": "4444"}

// mariaGroup is MariaDB servers in network namespaces, each with its
// drop-in sidecar: a Galera cluster, or a donor and a replica.
type mariaGroup struct {
	t     *testing.T
	top   *netnsTopology
	dir   string
	bins  galeraBins
	nodes map[string]*netnsProc
	all   []*netnsProc
}

// watchedMariaGroup is how the MariaDB tests start: it skips unless the
// namespace tests are on and MariaDB, Galera and nft are installed, runs
// the test in parallel, makes the group of nodes (newMariaGroup) and
// watches its bridge for plaintext on ports.
func watchedMariaGroup(t *testing.T, nodes, ports []string) (*mariaGroup, *bridgeWatch) {
	ipPath := netnsIPCommand(t)
	bins := galeraBinaries(t)
	nft := nftCommand(t)
	t.Parallel()
	g := newMariaGroup(t, ipPath, bins, nodes)
	return g, watchBridge(t, g.top, nft, ports, "")
}

// galeraWire is the ports Galera's traffic uses: gcomm, IST and SST.
var galeraWire = []string{galeraPorts["gcomm"], galeraPorts["ist"], galeraPorts["sst"]}

// newMariaGroup makes the topology of nodes, a folder the servers (user
// mysql) can reach, and a development PKI for the nodes in it (pki/).
func newMariaGroup(t *testing.T, ipPath string, bins galeraBins, nodes []string) *mariaGroup {
	t.Helper()
	g := &mariaGroup{t: t, top: newNetnsTopology(t, ipPath, nodes), dir: t.TempDir(), bins: bins, nodes: map[string]*netnsProc{}}
	openPath(t, g.dir) // the server runs as mysql
	devPKI(t, g.dir, nodes)
	return g
}

// galeraBins are the programs the test runs.
type galeraBins struct{ mariadbd, installDB, client, provider string }

// galeraBinaries finds MariaDB and Galera (Debian's mariadb-server,
// galera-4 and rsync, for rsync SST), or skips the test (a failure under
// GROUPWIRE_NETNS=1; .ci/run installs them).
func galeraBinaries(t *testing.T) galeraBins {
	t.Helper()
	b := galeraBins{provider: "/usr/lib/galera/libgalera_smm.so"}
	var missing []string
	for _, p := range []struct {
		name string
		dst  *string
	}{{"mariadbd", &b.mariadbd}, {"mariadb-install-db", &b.installDB}, {"mariadb", &b.client}, {"rsync", new(string)}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			if _, serr := os.Stat("/usr/sbin/" + p.name); serr == nil {
				path, err = "/usr/sbin/"+p.name, nil
			}
		}
		if err != nil {
			missing = append(missing, p.name)
		}
		*p.dst = path
	}
	if _, err := os.Stat(b.provider); err != nil {
		missing = append(missing, b.provider)
	}
	if len(missing) > 0 {
		netnsUnavailable(t, fmt.Sprintf("the Galera test needs %v (Debian's mariadb-server, galera-4, rsync)", missing))
	}
	return b
}

// galeraClusterFile is the drop-in cluster file: Galera's three channels
// on its default ports at every node.
func galeraClusterFile(nodes []string) string {
	return dropInFile("galera-dropin", [][2]string{{"gcomm", galeraPorts["gcomm"]}, {"ist", galeraPorts["ist"]}, {"sst", galeraPorts["sst"]}}, nodes,
		"dial_timeout: 1s\nhandshake_timeout: 3s\npeer_timeout: 10s\nprobe_interval: 1s\nreload_interval: 1h\n")
}

// serverCnf is what every test server's configuration starts with: run
// as mysql, files in node's folder, its host's address, the default port.
func (g *mariaGroup) serverCnf(node string) string {
	d := filepath.Join(g.dir, node)
	return fmt.Sprintf(`[mysqld]
user = mysql
datadir = %[1]s/data
socket = %[1]s/mysqld.sock
pid-file = %[1]s/mysqld.pid
log-error = %[1]s/error.log
port = 3306
bind-address = %[2]s
skip-name-resolve
binlog_format = ROW
innodb_buffer_pool_size = 32M
`, d, g.top.host(node).Addr)
}

// myCnf is node's Galera configuration, as a plain install writes it: its
// host's address, the default ports, the other nodes' addresses in
// wsrep_cluster_address, socket.ssl off.
func (g *mariaGroup) myCnf(node string, nodes []string) string {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, g.top.host(n).Addr)
	}
	return g.serverCnf(node) + fmt.Sprintf(`default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
innodb_flush_log_at_trx_commit = 0
wsrep_on = ON
wsrep_provider = %s
wsrep_cluster_name = gw-galera
wsrep_cluster_address = gcomm://%s
wsrep_node_address = %s
wsrep_node_name = %s
wsrep_sst_method = rsync
wsrep_provider_options = "gcache.size=64M"
`, g.bins.provider, strings.Join(addrs, ","), g.top.host(node).Addr, node)
}

// TestGaleraDropIn runs a three-node MariaDB Galera cluster in drop-in
// mode, each node configured as a plain install would be (its host's
// address, ports 4567, 4568 and 4444 everywhere, socket.ssl off), behind
// drop-in sidecars. The first node bootstraps, the others join by SST
// (rsync), a node that was stopped comes back by IST; rows written on each
// node are read on the others; wsrep_incoming_addresses lists the real
// addresses; no node blacklists a peer's address as its own; and the
// bridge carries not one packet on Galera's ports. (That a member sees its
// peer's real source address is shown by TestEtcdDropIn: Galera here
// logs no difference when delivery comes from the node's own address.)
func TestGaleraDropIn(t *testing.T) {
	nodes := []string{"g1", "g2", "g3"}
	g, wire := watchedMariaGroup(t, nodes, galeraWire)
	for _, n := range nodes {
		g.startSidecar(n, nodes)
	}
	for _, n := range nodes {
		g.initNode(n, g.myCnf(n, nodes))
	}
	g.start("g1", "--wsrep-new-cluster")
	g.waitStatus("g1", "wsrep_ready", "ON")
	g.sql("g1", "CREATE DATABASE gw; CREATE TABLE gw.t (id INT PRIMARY KEY AUTO_INCREMENT, at VARCHAR(16)); INSERT INTO gw.t (at) VALUES ('g1')")
	for _, n := range nodes[1:] { // SST
		g.start(n)
	}
	for _, n := range nodes {
		g.waitStatus(n, "wsrep_cluster_size", "3")
		g.waitStatus(n, "wsrep_local_state_comment", "Synced")
	}
	g.sql("g2", "INSERT INTO gw.t (at) VALUES ('g2')")
	g.sql("g3", "INSERT INTO gw.t (at) VALUES ('g3')")
	g.waitRows("g1", "g1,g2,g3")
	g.waitRows("g2", "g1,g2,g3")
	wire.noPlaintext("the cluster formed by SST")

	g.stop("g3") // IST when it comes back
	g.sql("g1", "INSERT INTO gw.t (at) VALUES ('while-g3-down')")
	g.start("g3")
	g.waitStatus("g3", "wsrep_local_state_comment", "Synced")
	g.waitRows("g3", "g1,g2,g3,while-g3-down")
	if log := g.errorLog("g3"); !strings.Contains(log, "IST received") {
		t.Errorf("g3 came back without IST (no \"IST received\" in its log):\n%s", tail(log, 30))
	}
	g.checkAddresses(nodes)
	wire.noPlaintext("IST")
}

// startSidecar starts node's drop-in sidecar on the cluster file the
// group's galeraClusterFile, and waits until it serves.
func (g *mariaGroup) startSidecar(node string, nodes []string) {
	g.t.Helper()
	g.startSidecarWith(node, galeraClusterFile(nodes))
}

// startSidecarWith starts node's sidecar on the cluster file content.
func (g *mariaGroup) startSidecarWith(node, content string) *netnsProc {
	g.t.Helper()
	file := filepath.Join(g.dir, node+".yaml")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
	p := startNetnsProc(g.t, g.top.ip, g.top.host(node).NS, "sidecar "+node, testutil.Groupwire(g.t),
		"run", "--config", file, "--member", node, "--log-format", "json")
	g.all = append(g.all, p)
	g.waitFor(15*time.Second, node+"'s sidecar serves", func() (bool, string) {
		return strings.Contains(p.out.String(), `"message":"sidecar running"`), "not yet"
	})
	return p
}

// initNode makes node's data folder and writes its configuration cnf.
func (g *mariaGroup) initNode(node, cnf string) {
	g.t.Helper()
	d := filepath.Join(g.dir, node)
	if err := os.MkdirAll(d, 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "my.cnf"), []byte(cnf), 0o644); err != nil {
		g.t.Fatal(err)
	}
	// The server runs as mysql, as packaged: rsync SST's daemon runs as the
	// server's user, and as root it would drop to nobody.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "chown", "-R", "mysql:mysql", d).CombinedOutput(); err != nil {
		g.t.Fatalf("chown %s: %v\n%s", d, err, out)
	}
	out, err := exec.CommandContext(ctx, g.bins.installDB, "--defaults-file="+filepath.Join(d, "my.cnf"),
		"--user=mysql", "--skip-test-db", "--auth-root-authentication-method=socket").CombinedOutput()
	if err != nil {
		g.t.Fatalf("mariadb-install-db for %s: %v\n%s", node, err, out)
	}
}

// start runs node's server in its host's namespace.
func (g *mariaGroup) start(node string, args ...string) {
	g.t.Helper()
	cnf := filepath.Join(g.dir, node, "my.cnf")
	p := startNetnsProc(g.t, g.top.ip, g.top.host(node).NS, "mariadbd "+node, g.bins.mariadbd, append([]string{"--defaults-file=" + cnf}, args...)...)
	g.nodes[node], g.all = p, append(g.all, p)
}

// stop shuts node's server down cleanly (SIGTERM), so it can rejoin by IST.
func (g *mariaGroup) stop(node string) {
	g.t.Helper()
	p := g.nodes[node]
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		g.t.Fatalf("%s did not stop within 60 s\n%s", node, g.dump())
	}
}

// sql runs statements on node through its socket (a socket file works
// across network namespaces).
func (g *mariaGroup) sql(node, stmts string) string {
	g.t.Helper()
	out, err := g.query(node, stmts)
	if err != nil {
		g.t.Fatalf("%s: %s: %v\n%s\n%s", node, stmts, err, out, g.dump())
	}
	return out
}

func (g *mariaGroup) query(node, stmts string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, g.bins.client, "--socket="+filepath.Join(g.dir, node, "mysqld.sock"),
		"-uroot", "-N", "-B", "-e", stmts).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// waitStatus waits until node's status variable reads want. The bound is
// generous: an SST copies a whole data folder.
func (g *mariaGroup) waitStatus(node, name, want string) {
	g.t.Helper()
	g.waitFor(2*time.Minute, fmt.Sprintf("%s: %s = %s", node, name, want), func() (bool, string) {
		out, err := g.query(node, "SHOW STATUS LIKE '"+name+"'")
		got := strings.TrimSpace(strings.TrimPrefix(out, name))
		return err == nil && got == want, fmt.Sprintf("%q (%v)", got, err)
	})
}

// waitRows waits until node has exactly the rows want (comma-separated,
// in id order): replication, not just a write, reached it.
func (g *mariaGroup) waitRows(node, want string) {
	g.t.Helper()
	g.waitFor(30*time.Second, node+" reads rows "+want, func() (bool, string) {
		out, err := g.query(node, "SELECT GROUP_CONCAT(at ORDER BY id) FROM gw.t")
		return err == nil && out == want, fmt.Sprintf("%q (%v)", out, err)
	})
}

// errorLog is node's server log.
func (g *mariaGroup) errorLog(node string) string {
	b, _ := os.ReadFile(filepath.Join(g.dir, node, "error.log"))
	return string(b)
}

// checkAddresses: wsrep_incoming_addresses lists every node's real
// address, and no node blacklisted a peer's address as matching its own
// endpoint, which is what a proxy that connects from 127.0.0.1 causes. A
// node blacklisting its own address from the cluster list is normal.
func (g *mariaGroup) checkAddresses(nodes []string) {
	g.t.Helper()
	incoming := g.sql("g1", "SHOW STATUS LIKE 'wsrep_incoming_addresses'")
	blacklisted := regexp.MustCompile(`blacklisting address tcp://([0-9.]+):`)
	for _, n := range nodes {
		if want := g.top.host(n).Addr + ":3306"; !strings.Contains(incoming, want) {
			g.t.Errorf("wsrep_incoming_addresses %q lacks %s (%s)", incoming, want, n)
		}
		for _, m := range blacklisted.FindAllStringSubmatch(g.errorLog(n), -1) {
			if m[1] != g.top.host(n).Addr {
				g.t.Errorf("%s blacklisted its peer's address %s as its own endpoint", n, m[1])
			}
		}
	}
}

func (g *mariaGroup) waitFor(limit time.Duration, what string, cond func() (bool, string)) {
	g.t.Helper()
	netnsWaitUntil(g.t, limit, what, cond, g.dump)
}

// dump is every process's output and every node's error log, for a
// failure.
func (g *mariaGroup) dump() string {
	var b strings.Builder
	b.WriteString(netnsDump(g.all))
	for n := range g.nodes {
		fmt.Fprintf(&b, "\n---- %s error.log (tail) ----\n%s", n, tail(g.errorLog(n), 60))
	}
	return b.String()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// openPath makes dir and every folder above it up to the temporary folder
// searchable by other users (t.TempDir's are 0700). The temporary folder
// itself, and what is above it, are left alone.
func openPath(t *testing.T, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != top && d != "/" && d != "." && strings.HasPrefix(d, top+"/"); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}

// execCommand runs a command, bounded, and returns its combined output.
func execCommand(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
