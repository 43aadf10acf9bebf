package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/proxy"
)

// TestTableKeepsTheReason: the table a terminal redraws every interval
// lists each pair that is down with its last error, for as long as it is
// down, not only in the redraw where it went down.
func TestTableKeepsTheReason(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir(), Channels: []string{"group"}})
	if err != nil {
		t.Fatal(err)
	}
	down := proxy.PeerStatus{Peer: "mysql-3", Channel: "group", LastProbe: time.Now(), LastError: `certificate "CN=mysql-3" serial 0x1003 is revoked`}
	ps := pairStates{"mysql-1": {"mysql-3": {"group": down}, "mysql-2": {"group": {Up: true, LastProbe: time.Now()}}}}
	for redraw := range 2 { // the same state, drawn twice: the reason stays
		var b bytes.Buffer
		writeTable(&b, g, ps, 10, 2, time.Duration(redraw)*time.Second)
		if want := "mysql-1 → mysql-3 [group] DOWN: " + down.LastError; !strings.Contains(b.String(), want) {
			t.Fatalf("redraw %d lacks %q:\n%s", redraw, want, b.String())
		}
		if strings.Contains(b.String(), "mysql-1 → mysql-2") {
			t.Fatalf("redraw %d lists a pair that is up:\n%s", redraw, b.String())
		}
	}
}
