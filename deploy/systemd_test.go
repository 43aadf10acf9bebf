package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitDirectives reads a systemd unit file into key → values, in order.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := make(map[string][]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: line %q is not KEY=VALUE", path, line)
			continue
		}
		d[k] = append(d[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return d
}

// TestSystemdUnit checks the unit's reload, stop and hardening directives,
// that the certificates its example cluster file names are inside its
// read-only paths.
func TestSystemdUnit(t *testing.T) {
	const unit = "systemd/groupwire.service"
	d := unitDirectives(t, unit)
	for k, want := range map[string]string{
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"KillSignal":              "SIGTERM",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"User":                    "groupwire",
		"ExecStart":               "/usr/local/bin/groupwire run",
		"EnvironmentFile":         "/etc/groupwire/groupwire.env",
		"ReadOnlyPaths":           "/etc/groupwire",
		"SystemCallArchitectures": "native",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s=%q, want %q", unit, k, got, want)
		}
	}
	if !slices.ContainsFunc(d["Environment"], func(v string) bool {
		return strings.Contains(v, "GROUPWIRE_CONFIG=/etc/groupwire/cluster.yaml")
	}) {
		t.Errorf("%s: Environment %q does not set GROUPWIRE_CONFIG=/etc/groupwire/cluster.yaml", unit, d["Environment"])
	}

	// Every file of the example cluster file is under ReadOnlyPaths.
	data, err := os.ReadFile("systemd/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, ps := plans(t, data, "systemd/cluster.yaml")
	ro := d["ReadOnlyPaths"][0] + "/"
	for m, p := range ps {
		for _, ch := range p.Channels {
			for _, f := range []string{ch.Source.Cert, ch.Source.Key, ch.Source.CA, ch.Source.CRL} {
				if f != "" && !strings.HasPrefix(f, ro) {
					t.Errorf("member %s channel %s: %s is outside ReadOnlyPaths %s", m, ch.Name, f, ro)
				}
			}
		}
	}
	env := unitDirectives(t, "systemd/groupwire.env")
	if len(env["GROUPWIRE_MEMBER"]) != 1 || !slices.Contains(cfg.Members(), env["GROUPWIRE_MEMBER"][0]) {
		t.Errorf("systemd/groupwire.env: GROUPWIRE_MEMBER %q is not a member of systemd/cluster.yaml %v", env["GROUPWIRE_MEMBER"], cfg.Members())
	}
}

// TestSystemdUnitVerifies has systemd itself check the unit's syntax.
// .ci/run installs systemd-analyze, so CI never skips it.
func TestSystemdUnitVerifies(t *testing.T) {
	const unit = "systemd/groupwire.service"
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd); unit syntax not verified")
	}
	// verify wants the commands to exist: point them at /bin/true.
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(text), "/usr/local/bin/groupwire", "/bin/true")
	s = strings.ReplaceAll(s, "EnvironmentFile=/", "EnvironmentFile=-/")
	tmp := filepath.Join(t.TempDir(), "groupwire.service")
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// TestSystemdDropInOverride checks the override for drop-in mode: it gives
// CAP_NET_ADMIN and nothing else, installs the rules before the sidecar
// starts, and systemd accepts the unit with it.
func TestSystemdDropInOverride(t *testing.T) {
	const conf = "systemd/dropin-capture.conf"
	d := unitDirectives(t, conf)
	for k, want := range map[string]string{
		"CapabilityBoundingSet": "CAP_NET_ADMIN",
		"AmbientCapabilities":   "CAP_NET_ADMIN",
		"ExecStartPre":          "/usr/local/bin/groupwire capture --config ${GROUPWIRE_CONFIG} --member ${GROUPWIRE_MEMBER}",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s=%q, want %q", conf, k, got, want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd); override not verified")
	}
	// The unit with the override appended: a second [Service] section is
	// read as the override would be, and systemd checks both.
	var merged strings.Builder
	for _, from := range []string{"systemd/groupwire.service", conf} {
		text, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		merged.Write(text)
		merged.WriteString("\n")
	}
	s := strings.ReplaceAll(merged.String(), "/usr/local/bin/groupwire", "/bin/true")
	s = strings.ReplaceAll(s, "EnvironmentFile=/", "EnvironmentFile=-/")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "groupwire.service"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "groupwire.service")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify with %s: %v\n%s", conf, err, out)
	}
}
