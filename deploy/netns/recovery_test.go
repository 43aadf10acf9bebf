//go:build linux

package netns

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recoveryClusterFile is the drop-in cluster file of a donor and a replica
// whose one channel is the MySQL protocol port, as MySQL Group
// Replication's recovery channel is.
func recoveryClusterFile(nodes []string) string {
	return dropInFile("recovery-dropin", [][2]string{{"recovery", "3306"}}, nodes,
		"dial_timeout: 1s\nhandshake_timeout: 3s\npeer_timeout: 10s\nprobe_interval: 1s\nreload_interval: 1h\n")
}

// replicationCnf is a plain server with binary logs and its own TLS: the
// members' own certificates from the test's PKI, as the manual's recovery
// section has the server's ssl_* set.
func (g *mariaGroup) replicationCnf(node string, serverID int) string {
	pki := filepath.Join(g.dir, "pki")
	return g.serverCnf(node) + fmt.Sprintf(`server-id = %[1]d
log-bin = %[2]s/binlog
ssl_ca = %[3]s/ca.pem
ssl_cert = %[3]s/%[4]s.pem
ssl_key = %[3]s/%[4]s-key.pem
`, serverID, filepath.Join(g.dir, node), pki, node)
}

// TestRecoveryChannelDropIn is MySQL Group Replication's recovery channel,
// verbatim, through drop-in mode: an asynchronous replication connection
// (MariaDB's, the same protocol path) from the replica to the donor's real
// address and MySQL port, with the manual's settings left on: a
// replication user created REQUIRE SSL on the donor, and the replica
// configured with MASTER_SSL=1 and the donor's CA. The members' own TLS
// runs inside the tunnel. Replication must work (the REQUIRE SSL user
// proves the donor saw a TLS session), the donor must see the replica's
// own address, and no packet on 3306 may cross the bridge.
func TestRecoveryChannelDropIn(t *testing.T) {
	nodes := []string{"donor", "replica"}
	g, wire := watchedMariaGroup(t, nodes, []string{"3306"})
	for _, n := range nodes {
		g.startSidecarWith(n, recoveryClusterFile(nodes))
	}
	for i, n := range nodes {
		g.initNode(n, g.replicationCnf(n, i+1))
	}
	g.chown(filepath.Join(g.dir, "pki")) // the servers read their own keys as mysql
	for _, n := range nodes {
		g.start(n)
	}
	for _, n := range nodes {
		g.waitFor(60*time.Second, n+" serves", func() (bool, string) {
			out, err := g.query(n, "SELECT 1")
			return err == nil && out == "1", fmt.Sprint(out, err)
		})
	}
	g.sql("donor", "CREATE USER 'repl'@'%' IDENTIFIED BY 'gw-test' REQUIRE SSL; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';"+
		"CREATE DATABASE gw; CREATE TABLE gw.t (id INT PRIMARY KEY AUTO_INCREMENT, at VARCHAR(16)); INSERT INTO gw.t (at) VALUES ('before')")
	g.sql("replica", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='gw-test', "+
		"MASTER_SSL=1, MASTER_SSL_CA='%s', MASTER_USE_GTID=slave_pos; START SLAVE", g.top.host("donor").Addr, filepath.Join(g.dir, "pki", "ca.pem")))
	g.sql("donor", "INSERT INTO gw.t (at) VALUES ('after')")
	g.waitRows("replica", "before,after")
	g.waitFor(30*time.Second, "the donor to see the replica's own address", func() (bool, string) {
		out, err := g.query("donor", "SELECT HOST FROM information_schema.PROCESSLIST WHERE USER = 'repl'")
		return err == nil && strings.HasPrefix(out, g.top.host("replica").Addr+":"), fmt.Sprint(out, err)
	})
	wire.noPlaintext("replication")
}

// chown gives dir to the server's user.
func (g *mariaGroup) chown(dir string) {
	g.t.Helper()
	if out, err := execCommand("chown", "-R", "mysql:mysql", dir); err != nil {
		g.t.Fatalf("chown %s: %v\n%s", dir, err, out)
	}
}
