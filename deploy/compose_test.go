package deploy

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
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
	DependsOn   []string          `yaml:"depends_on"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
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
// through the sidecar: NAME=ADDR for each outbound route, sorted.
func wantPings(plan *cluster.Plan, channel string) string {
	var ts []string
	for _, r := range plan.Outbound {
		if r.Channel == channel {
			ts = append(ts, r.Peer+"="+r.Listen)
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
// cluster.yaml: a member service and a sidecar sharing its network
// namespace per member; each member listens where its sidecar delivers
// and pings every peer where its sidecar tunnels; certs init makes
// certificates for exactly the group's members.
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

		svc, ok := cf.Services[m]
		if !ok {
			t.Errorf("no service %s for member %s", m, m)
			continue
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
		if sc.NetworkMode != "service:"+m {
			t.Errorf("%s: network_mode %q, want service:%s", sidecar, sc.NetworkMode, m)
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
	}
	if n := len(cfg.Members()); len(cf.Services) != 2*n+1 {
		t.Errorf("%d services, want %d (certs, and a member and a sidecar per member)", len(cf.Services), 2*n+1)
	}
}
