package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/groupwire/groupwire/proxy/cluster"
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
			if _, err := cfg.Plan(m, memberEnv(m)); err != nil {
				t.Errorf("member %s: %v\n%s", m, err, yaml)
			}
		}
	}
	if files < 2 {
		t.Fatalf("found %d whole cluster files in README.md, want at least 2", files)
	}
}
