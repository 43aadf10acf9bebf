package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the layering: main → proxy → transport →
// certs. A lower package never imports a higher one, and nothing but
// tests imports bench.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/groupwire/groupwire"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	rank := func(pkg string) int {
		switch {
		case strings.HasPrefix(pkg, mod+"/certs"):
			return 1
		case strings.HasPrefix(pkg, mod+"/transport"):
			return 2
		case strings.HasPrefix(pkg, mod+"/proxy"):
			return 3
		case pkg == mod:
			return 4
		default:
			return 0 // bench, deploy: may import the others
		}
	}
	seen := false // proxy → transport must be among the edges, or the parsing is off
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			seen = seen || pkg == mod+"/proxy" && imp == mod+"/transport"
			if imp == mod || strings.HasPrefix(imp, mod+"/bench") {
				t.Errorf("%s imports %s", pkg, imp)
			}
			if r := rank(pkg); r > 0 && rank(imp) > r {
				t.Errorf("%s imports %s, against main → proxy → transport → certs", pkg, imp)
			}
		}
	}
	if !seen {
		t.Fatalf("go list output does not show proxy importing transport:\n%s", out)
	}
}
