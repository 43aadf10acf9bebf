package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// mayImport is the layering: for each part of the module, the other parts
// its non-test code may import. A part covers its folder and everything
// below it, unless a more specific part names the subfolder. The
// direction is main → internal/localgroup → proxy → proxy/cluster →
// transport → transport/tlsopt, with certs beneath all of them, and
// proxy → proxy/relay, which stands alone; transport and proxy/relay share
// internal/rawio, a leaf, for their sockets' raw reads and writes. bench and deploy may use
// anything but main; nothing imports bench.
var mayImport = map[string][]string{
	"certs":               {"internal/testutil"},
	"transport/tlsopt":    {},
	"transport":           {"transport/tlsopt", "certs", "internal/rawio"},
	"proxy/cluster":       {"transport", "certs"},
	"proxy/relay":         {"internal/rawio"},
	"internal/rawio":      {},
	"proxy":               {"proxy/cluster", "proxy/relay", "transport", "certs"},
	"internal/testutil":   {},
	"internal/localgroup": {"proxy", "transport", "certs"},
	"":                    {"internal/localgroup", "proxy", "transport", "certs"},
	"bench":               {"internal", "proxy", "transport", "certs"},
	"deploy":              {"internal", "proxy", "transport", "certs"},
}

// TestImportDirection keeps mayImport true of the module's packages.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/groupwire/groupwire"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	edges := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		part := partOf(relPath(mod, fields[0]))
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			edges++
			rel := relPath(mod, imp)
			if part != "" && partOf(rel) == part || slices.ContainsFunc(mayImport[part], func(p string) bool { return within(rel, p) }) {
				continue
			}
			t.Errorf("%s imports %s: part %q may import only %v", fields[0], imp, part, mayImport[part])
		}
	}
	if edges < 10 {
		t.Fatalf("go list shows only %d imports inside the module; the parsing is off:\n%s", edges, out)
	}
}

// relPath is pkg's path inside the module, "" for the module's root.
func relPath(mod, pkg string) string {
	return strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
}

// partOf returns the most specific part of mayImport that holds pkg; ""
// (the root's rules) when none does.
func partOf(pkg string) string {
	best := ""
	for part := range mayImport {
		if within(pkg, part) && len(part) > len(best) {
			best = part
		}
	}
	return best
}

// within reports whether pkg is the folder dir or below it.
func within(pkg, dir string) bool {
	return dir != "" && (pkg == dir || strings.HasPrefix(pkg, dir+"/"))
}
