package proxy

import (
	"strings"
	"testing"
	"time"
)

// TestStatusPageShowsModesDuringARollingChange: while a channel has
// accept_modes, each pair's cell says which modes its live links run at;
// otherwise it does not.
func TestStatusPageShowsModesDuringARollingChange(t *testing.T) {
	st := Status{Group: "g", Member: "mysql-1", Serving: true,
		Channels: []ChannelStatus{
			{Name: "group", Mode: "VERIFY_IDENTITY", AcceptModes: []string{"DISABLED", "VERIFY_IDENTITY"}, Reload: ReloadStatus{OK: true}},
			{Name: "recovery", Mode: "VERIFY_IDENTITY", Reload: ReloadStatus{OK: true}},
		},
		Peers: []PeerStatus{
			{Peer: "mysql-2", Channel: "group", Up: true, LiveLinks: 2, LinkModes: []string{"DISABLED", "VERIFY_IDENTITY"}},
			{Peer: "mysql-2", Channel: "recovery", Up: true, LiveLinks: 1, LinkModes: []string{"VERIFY_IDENTITY"}},
		}}
	var b strings.Builder
	if err := writeStatusPage(&b, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "data-modes="); n != 1 {
		t.Errorf("%d cells name their links' modes, want 1 (the channel with accept_modes):\n%s", n, page)
	}
	if !strings.Contains(page, `data-modes="DISABLED, VERIFY_IDENTITY">links at DISABLED, VERIFY_IDENTITY`) {
		t.Errorf("the group channel's cell does not say its links run at both modes:\n%s", page)
	}
}
