package capture

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/groupwire/groupwire/proxy/cluster"
)

// fakeResolver answers from a fixed table.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f[host], nil
}

// TestResolve: names become their addresses and map back to their member
// and channel; an IPv6 address is refused (not captured yet); and two
// members' channels at one address and port are refused, since a captured
// connection could not be told apart.
func TestResolve(t *testing.T) {
	plan := func(hosts ...string) *cluster.CapturePlan {
		c := &cluster.CapturePlan{Port: 24901, Mark: cluster.CaptureMark, Guarded: []int{4567}}
		for i, h := range hosts {
			c.Targets = append(c.Targets, cluster.CaptureTarget{Member: []string{"db-2", "db-3"}[i], Channel: "gcomm", Host: h, Port: 4567})
		}
		return c
	}
	names := fakeResolver{"db-3.galera": {netip.MustParseAddr("10.0.0.3")}, "alias": {netip.MustParseAddr("10.0.0.2")}}
	rules, err := Resolve(context.Background(), plan("10.0.0.2", "db-3.galera"), names)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rules.Lookup(netip.MustParseAddrPort("10.0.0.3:4567")); !ok || got.Member != "db-3" || got.Channel != "gcomm" {
		t.Errorf("Lookup(10.0.0.3:4567) = %+v, %v; want db-3's gcomm", got, ok)
	}
	if _, ok := rules.Lookup(netip.MustParseAddrPort("10.0.0.3:4568")); ok {
		t.Error("Lookup found a port no channel uses")
	}
	if _, err := Resolve(context.Background(), plan("fd00::2"), names); err == nil || !strings.Contains(err.Error(), "IPv6") {
		t.Errorf("an IPv6 peer: %v, want a refusal naming IPv6", err)
	}
	if _, err := Resolve(context.Background(), plan("10.0.0.2", "alias"), names); err == nil || !strings.Contains(err.Error(), "both db-2's channel gcomm and db-3's") {
		t.Errorf("two members at one address: %v, want a refusal naming both", err)
	}
}
