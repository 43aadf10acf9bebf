package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/config")

// goldenCase is what a test cluster file's leading comments ask for:
// "# member: NAME" (default: the first member) and "# env: KEY=VALUE".
type goldenCase struct {
	member string
	env    map[string]string
}

func readGoldenCase(data []byte) goldenCase {
	gc := goldenCase{env: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		if v, ok := strings.CutPrefix(line, "# member: "); ok {
			gc.member = v
		}
		if v, ok := strings.CutPrefix(line, "# env: "); ok {
			k, val, _ := strings.Cut(v, "=")
			gc.env[k] = val
		}
	}
	return gc
}

// runGolden parses a cluster file and plans one member: the FormatPlan
// output for a valid file, the full error text for an invalid one.
func runGolden(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gc := readGoldenCase(data)
	cfg, err := ParseConfig(data, path)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	if gc.member == "" {
		gc.member = cfg.Members()[0]
	}
	plan, err := cfg.Plan(gc.member, func(k string) (string, bool) {
		v, ok := gc.env[k]
		return v, ok
	})
	if err != nil {
		var cerr *ConfigError
		if !errors.As(err, &cerr) {
			t.Errorf("Plan error is %T, want *ConfigError", err)
		}
		return "error: " + err.Error() + "\n"
	}
	var out bytes.Buffer
	FormatPlan(&out, plan)
	return out.String()
}

func TestConfigGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cluster files: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			got := runGolden(t, path)
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./proxy/cluster -run Config -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", path, golden, got, want)
			}
			// A file that silently turned valid (or invalid) fails here even
			// after -update rewrote its golden.
			wantErr := !validGolden[name]
			if gotErr := strings.HasPrefix(got, "error: "); gotErr != wantErr {
				t.Errorf("%s: error = %v, want %v", path, gotErr, wantErr)
			}
		})
	}
}

// validGolden names the test cluster files that must plan without error.
var validGolden = map[string]bool{
	"minimal":                true,
	"transparent":            true,
	"transparent_onboarding": true,
	"accept_modes":           true,
	"limits":                 true,
	"allowed_uids":           true,
	"full":                   true,
	"env":                    true,
	"template_ok":            true,
	"non_loopback":           true,
	"acme":                   true,
}
