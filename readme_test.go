package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/groupwire/groupwire/proxy/cluster"
	"github.com/groupwire/groupwire/transport"
)

// TestREADMEClusterFiles keeps the README's cluster file examples valid:
// every YAML block that is a whole cluster file parses strictly, and
// plans for every member unless it uses an address template (whose result
// depends on the machine).
func TestREADMEClusterFiles(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	files := 0
	for _, b := range blocks {
		yaml := b[1]
		if !strings.HasPrefix(yaml, "group:") {
			continue // a fragment
		}
		files++
		cfg, err := cluster.ParseConfig([]byte(yaml), "README.md example")
		if err != nil {
			t.Errorf("%v\n%s", err, yaml)
			continue
		}
		if strings.Contains(yaml, "{{") {
			continue
		}
		for _, m := range cfg.Members() {
			if _, err := cfg.Plan(m, os.LookupEnv); err != nil {
				t.Errorf("member %s: %v\n%s", m, err, yaml)
			}
		}
	}
	if files < 2 {
		t.Fatalf("found %d whole cluster files in README.md, want at least 2", files)
	}
}

// TestMakeFuzzListsEveryTarget keeps `make fuzz` complete: every native
// fuzz target of the module is in the Makefile's FUZZ_TARGETS, with its
// package, and the list names no target that does not exist.
func TestMakeFuzzListsEveryTarget(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(\./[\w/]+):(Fuzz\w+)`).FindAllStringSubmatch(string(mk), -1) {
		listed[m[1]+":"+m[2]] = true
	}
	found := map[string]bool{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`).FindAllStringSubmatch(string(src), -1) {
			found["./"+filepath.Dir(path)+":"+m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for target := range found {
		if !listed[target] {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS", target)
		}
	}
	for target := range listed {
		if !found[target] {
			t.Errorf("the Makefile lists %s, which does not exist", target)
		}
	}
}

// TestREADMEListsEveryRefusalReason holds the README's table of refusal
// reasons against transport.Reasons(): operators alert on these labels.
func TestREADMEListsEveryRefusalReason(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "<!-- refusal reasons:")
	if !ok {
		t.Fatal("README.md has no refusal reasons table")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	listed := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
			listed[m[1]] = true
		}
	}
	for _, r := range transport.Reasons() {
		if !listed[string(r)] {
			t.Errorf("reason %q is not in README.md's table", r)
		}
		delete(listed, string(r))
	}
	for r := range listed {
		t.Errorf("README.md's table lists %q, which transport.Reasons() does not have", r)
	}
}
