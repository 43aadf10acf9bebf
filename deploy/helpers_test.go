package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// decodeAll decodes every YAML document of the file at path into a T,
// returning them in order.
func decodeAll[T any](t *testing.T, path string) []T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		docs = append(docs, v)
	}
}

// decodeOne decodes the single YAML document of the file at path.
func decodeOne[T any](t *testing.T, path string) T {
	t.Helper()
	docs := decodeAll[T](t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: want 1 YAML document, got %d", path, len(docs))
	}
	return docs[0]
}

// plans parses a cluster file's text (named name, for errors and relative
// paths) and returns the plan of every member, failing the test on any
// problem.
func plans(t *testing.T, data []byte, name string) (*cluster.Config, map[string]*cluster.Plan) {
	t.Helper()
	cfg, err := cluster.ParseConfig(data, name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(cfg.Members()) < 2 {
		t.Fatalf("%s: want a group of at least 2 members, got %v", name, cfg.Members())
	}
	ps := make(map[string]*cluster.Plan)
	for _, m := range cfg.Members() {
		p, err := cfg.Plan(m, nil) // ${GROUPWIRE_MEMBER} is m; no other variable is set
		if err != nil {
			t.Fatalf("%s: plan of %s: %v", name, m, err)
		}
		ps[m] = p
	}
	return cfg, ps
}

// withDevCerts makes a development CA and certificates for members with
// devpki (what `groupwire certs init` writes) in a temporary folder, and
// returns the cluster file's text with certDir (the folder the file names,
// such as "/certs/") pointing there instead, and the folder.
func withDevCerts(t *testing.T, cluster []byte, certDir string, members []string) ([]byte, string) {
	t.Helper()
	if !bytes.Contains(cluster, []byte(certDir)) {
		t.Fatalf("cluster file names no file under %s", certDir)
	}
	dir := t.TempDir()
	if err := devpki.Init(devpki.DirOptions{Dir: dir}, members); err != nil {
		t.Fatalf("devpki init: %v", err)
	}
	return bytes.ReplaceAll(cluster, []byte(certDir), []byte(dir+"/")), dir
}

// materialErrors returns the error-level problems CheckMaterial finds in
// plan's key material now.
func materialErrors(plan *cluster.Plan) []string {
	var errs []string
	for _, p := range cluster.CheckMaterial(plan, time.Now()) {
		if p.Severity == cluster.SeverityError {
			errs = append(errs, p.String())
		}
	}
	return errs
}

// checkWithDevCerts checks that the cluster file works for every member
// with certificates made by `groupwire certs init`, as CheckMaterial (the
// heart of `groupwire check`) sees it.
func checkWithDevCerts(t *testing.T, cluster []byte, name, certDir string) {
	t.Helper()
	cfg, _ := plans(t, cluster, name)
	data, dir := withDevCerts(t, cluster, certDir, cfg.Members())
	_, ps := plans(t, data, filepath.Join(dir, filepath.Base(name)))
	for m, p := range ps {
		if errs := materialErrors(p); len(errs) > 0 {
			t.Errorf("%s: member %s with certs init certificates:\n  %s", name, m, strings.Join(errs, "\n  "))
		}
	}
}
