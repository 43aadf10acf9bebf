package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleClusterFiles are the cluster files of the deploy examples: name,
// text, and the folder their certificate paths point into.
func exampleClusterFiles(t *testing.T) []struct {
	name, certDir string
	data          []byte
} {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return b
	}
	return []struct {
		name, certDir string
		data          []byte
	}{
		{"compose/cluster.yaml", "/certs/", read("compose/cluster.yaml")},
		{"kubernetes/configmap.yaml:cluster.yaml", "/certs/", []byte(kubeClusterFile(t, "kubernetes"))},
		{"kubernetes/dropin/configmap.yaml:cluster.yaml", "/certs/", []byte(kubeClusterFile(t, "kubernetes/dropin"))},
		{"systemd/cluster.yaml", "/etc/groupwire/certs/", read("systemd/cluster.yaml")},
	}
}

// TestClusterFilesAreValid does what `groupwire check` does for every
// member of every example cluster file, with certificates made by
// `groupwire certs init`: the file plans cleanly for each member and the
// certificates satisfy its ssl_mode (chain, CRL, identity).
func TestClusterFilesAreValid(t *testing.T) {
	for _, f := range exampleClusterFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			checkWithDevCerts(t, f.data, f.name, f.certDir)
		})
	}
}

// TestCheckCatchesWrongCertificates is the control for the test above:
// with two members' certificates swapped, each is reported as not naming
// its member.
func TestCheckCatchesWrongCertificates(t *testing.T) {
	data, err := os.ReadFile("compose/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	members := []string{"mysql-1", "mysql-2", "mysql-3"}
	data, dir := withDevCerts(t, data, "/certs/", members)
	for _, suffix := range []string{".pem", "-key.pem"} {
		a, b := filepath.Join(dir, "mysql-2"+suffix), filepath.Join(dir, "mysql-3"+suffix)
		tmp := a + ".swap"
		for _, mv := range [][2]string{{a, tmp}, {b, a}, {tmp, b}} {
			if err := os.Rename(mv[0], mv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, ps := plans(t, data, filepath.Join(dir, "cluster.yaml"))
	if errs := materialErrors(ps["mysql-1"]); len(errs) > 0 {
		t.Errorf("mysql-1 (untouched): unexpected problems %v", errs)
	}
	for _, m := range []string{"mysql-2", "mysql-3"} {
		errs := materialErrors(ps[m])
		if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), m) {
			t.Errorf("%s with another member's certificate: want an error naming %s, got %v", m, m, errs)
		}
	}
}
