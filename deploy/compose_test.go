package deploy

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/groupwire/groupwire/proxy/cluster"
)

// composeFile is the part of docker-compose.yml the tests look at.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	NetworkMode string            `yaml:"network_mode"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Profiles    []string          `yaml:"profiles"`
	DependsOn   any               `yaml:"depends_on"` // a list, or a map with conditions
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	CapAdd      []string          `yaml:"cap_add"`
	User        string            `yaml:"user"`
}

// memberCommand is a parsed `groupwire member` command line.
type memberCommand struct{ name, listen, ping string }

func parseMemberCommand(args []string) (memberCommand, error) {
	if len(args) == 0 || args[0] != "member" {
		return memberCommand{}, fmt.Errorf("want a `member` command, got %q", args)
	}
	var c memberCommand
	fs := flag.NewFlagSet("member", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.name, "name", "", "")
	fs.StringVar(&c.listen, "listen", "", "")
	fs.StringVar(&c.ping, "ping", "", "")
	fs.String("interval", "", "")
	fs.String("timeout", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return c, fmt.Errorf("member command %q: %w", args, err)
	}
	return c, nil
}

// wantPings is the --ping value that reaches every peer of plan's channel
// through the sidecar, sorted: NAME=ADDR for each outbound listener in
// loopback mode, for each captured address in drop-in mode.
func wantPings(plan *cluster.Plan, channel string) string {
	var ts []string
	for _, r := range plan.Outbound {
		if r.Channel == channel && r.Listen != "" {
			ts = append(ts, r.Peer+"="+r.Listen)
		}
	}
	if plan.Capture != nil {
		for _, c := range plan.Capture.Targets {
			if c.Channel == channel {
				ts = append(ts, c.Member+"="+net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
			}
		}
	}
	slices.Sort(ts)
	return strings.Join(ts, ",")
}

func sortedList(s string) string {
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// TestComposeAgreesWithClusterFile checks docker-compose.yml against
// cluster.yaml, in drop-in mode: per member a namespace holder named after
// it, and joining its namespace a capture init, the member (started only
// once the capture init succeeded) and the sidecar; each member listens
// where its sidecar delivers and pings every peer at the address its
// sidecar captures; certs init makes certificates for exactly the group's
// members.
func TestComposeAgreesWithClusterFile(t *testing.T) {
	data, err := os.ReadFile("compose/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, ps := plans(t, data, "compose/cluster.yaml")
	cf := decodeOne[composeFile](t, "compose/docker-compose.yml")

	certs, ok := cf.Services["certs"]
	if !ok {
		t.Fatal("no certs service")
	}
	want := []string{"certs", "init", "--dir", "/certs", "--members", strings.Join(cfg.Members(), ",")}
	if !slices.Equal(certs.Command, want) {
		t.Errorf("certs command = %q, want %q", certs.Command, want)
	}
	if !slices.Contains(certs.Volumes, "certs:/certs") {
		t.Errorf("certs service volumes %q: want certs:/certs, writable", certs.Volumes)
	}
	if !slices.Contains(certs.Profiles, "setup") {
		t.Errorf("certs service profiles %q: want setup, so that up does not make a new CA each time", certs.Profiles)
	}
	if _, ok := cf.Volumes["certs"]; !ok {
		t.Error("no certs volume declared")
	}

	for i, m := range cfg.Members() {
		plan := ps[m]
		if len(plan.Inbound) != 1 {
			t.Fatalf("%s: want one channel, got %d", m, len(plan.Inbound))
		}
		channel := plan.Inbound[0].Channel

		if h := cf.Services[m]; !slices.Equal(h.Command, []string{"pause"}) {
			t.Errorf("service %s (the namespace holder): command %q, want [pause]", m, h.Command)
		}
		checkCaptureInit(t, cf, i+1, m)
		svc, ok := cf.Services[fmt.Sprintf("member-%d", i+1)]
		if !ok {
			t.Errorf("no service member-%d for member %s", i+1, m)
			continue
		}
		if svc.NetworkMode != "service:"+m || !startsAfterCapture(svc, i+1) {
			t.Errorf("member-%d: network_mode %q, depends_on %v: want service:%s, after capture-%d completed", i+1, svc.NetworkMode, svc.DependsOn, m, i+1)
		}
		mc, err := parseMemberCommand(svc.Command)
		if err != nil {
			t.Errorf("service %s: %v", m, err)
			continue
		}
		if mc.name != m {
			t.Errorf("service %s: --name %q, want %q", m, mc.name, m)
		}
		if mc.listen != plan.Inbound[0].Target {
			t.Errorf("service %s: --listen %q, but its sidecar delivers to %q", m, mc.listen, plan.Inbound[0].Target)
		}
		if got, want := sortedList(mc.ping), wantPings(plan, channel); got != want {
			t.Errorf("service %s: --ping %q, want %q (its sidecar's tunnels)", m, mc.ping, want)
		}

		sidecar := fmt.Sprintf("sidecar-%d", i+1)
		sc, ok := cf.Services[sidecar]
		if !ok {
			t.Errorf("no service %s for member %s", sidecar, m)
			continue
		}
		if sc.NetworkMode != "service:"+m || !startsAfterCapture(sc, i+1) {
			t.Errorf("%s: network_mode %q, depends_on %v: want service:%s, after capture-%d completed", sidecar, sc.NetworkMode, sc.DependsOn, m, i+1)
		}
		if sc.Environment["GROUPWIRE_MEMBER"] != m {
			t.Errorf("%s: GROUPWIRE_MEMBER %q, want %q", sidecar, sc.Environment["GROUPWIRE_MEMBER"], m)
		}
		if want := []string{"run", "--config", "/etc/groupwire/cluster.yaml"}; !slices.Equal(sc.Command, want) {
			t.Errorf("%s: command %q, want %q", sidecar, sc.Command, want)
		}
		for _, v := range []string{"./cluster.yaml:/etc/groupwire/cluster.yaml:ro", "certs:/certs:ro"} {
			if !slices.Contains(sc.Volumes, v) {
				t.Errorf("%s: volumes %q lack %s", sidecar, sc.Volumes, v)
			}
		}
		if !sc.ReadOnly || !slices.Contains(sc.CapDrop, "ALL") {
			t.Errorf("%s: want read_only and cap_drop ALL", sidecar)
		}
		if plan.Capture != nil && (!slices.Equal(sc.CapAdd, []string{"NET_ADMIN"}) || sc.User != "0:0") {
			t.Errorf("%s: drop-in mode needs cap_add [NET_ADMIN] and user 0:0 (root's effective set), got %q and %q", sidecar, sc.CapAdd, sc.User)
		}
	}
	if n := len(cfg.Members()); len(cf.Services) != 4*n+1 {
		t.Errorf("%d services, want %d (certs, and a holder, a capture init, a member and a sidecar per member)", len(cf.Services), 4*n+1)
	}
}

// checkCaptureInit checks capture-N: it installs member's rules in its
// namespace, with CAP_NET_ADMIN and nothing else.
func checkCaptureInit(t *testing.T, cf composeFile, n int, member string) {
	t.Helper()
	name := fmt.Sprintf("capture-%d", n)
	c, ok := cf.Services[name]
	switch {
	case !ok:
		t.Errorf("no service %s", name)
	case !slices.Equal(c.Command, []string{"capture", "--config", "/etc/groupwire/cluster.yaml"}) || c.Environment["GROUPWIRE_MEMBER"] != member:
		t.Errorf("%s: command %q, GROUPWIRE_MEMBER %q: want capture --config /etc/groupwire/cluster.yaml for %s", name, c.Command, c.Environment["GROUPWIRE_MEMBER"], member)
	case c.NetworkMode != "service:"+member || !slices.Equal(c.CapAdd, []string{"NET_ADMIN"}) || !slices.Contains(c.CapDrop, "ALL"):
		t.Errorf("%s: network_mode %q, cap_add %q, cap_drop %q: want service:%s, NET_ADMIN only", name, c.NetworkMode, c.CapAdd, c.CapDrop, member)
	}
}

// startsAfterCapture reports whether s waits for capture-N to complete.
func startsAfterCapture(s composeService, n int) bool {
	deps, _ := s.DependsOn.(map[string]any)
	dep, _ := deps[fmt.Sprintf("capture-%d", n)].(map[string]any)
	return dep["condition"] == "service_completed_successfully"
}
