package proxy

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"
)

//go:embed status.html
var statusHTML string

// statusPage is the status page's template, built into the binary with no
// external assets.
var statusPage = template.Must(template.New("status").Parse(statusHTML))

// pageData is what the status page shows.
type pageData struct {
	Group, Member string
	Serving       bool
	Channels      []string
	Rows          []pageRow
	Expiry        []pageExpiry
	Errors        []pageError
}

type pageRow struct {
	Peer  string
	Cells []pageCell
}

type pageCell struct {
	Peer, Channel, State, Setup, ToPeer, ToMember string
	Links                                         int
	// Modes, during a rolling ssl_mode change (the channel has
	// accept_modes), are the modes the pair's live links run at.
	Modes string
}

type pageExpiry struct{ Channel, What, Subject, When, In, Level string }

type pageError struct{ Where, Text string }

// writeStatusPage renders st as HTML as of now.
func writeStatusPage(w io.Writer, st Status, now time.Time) error {
	d := pageData{Group: st.Group, Member: st.Member, Serving: st.Serving}
	for _, ch := range st.Channels {
		d.Channels = append(d.Channels, ch.Name)
		d.Expiry = append(d.Expiry, channelExpiry(ch, now)...)
		if !ch.Reload.OK {
			d.Errors = append(d.Errors, pageError{"channel " + ch.Name + " reload", ch.Reload.LastError})
		}
	}
	d.Rows = pageRows(st, d.Channels)
	rolling := map[string]bool{}
	for _, ch := range st.Channels {
		rolling[ch.Name] = len(ch.AcceptModes) > 0
	}
	for _, row := range d.Rows {
		for i, c := range row.Cells {
			if !rolling[c.Channel] {
				row.Cells[i].Modes = ""
			}
		}
	}
	for _, p := range st.Peers {
		if p.LastError != "" {
			d.Errors = append(d.Errors, pageError{p.Peer + " [" + p.Channel + "]", p.LastError})
		}
	}
	return statusPage.Execute(w, d)
}

// pageRows lays the pairs out as a matrix: a row per peer, a column per
// channel.
func pageRows(st Status, channels []string) []pageRow {
	byPeer := map[string]map[string]PeerStatus{}
	for _, p := range st.Peers {
		if byPeer[p.Peer] == nil {
			byPeer[p.Peer] = map[string]PeerStatus{}
		}
		byPeer[p.Peer][p.Channel] = p
	}
	peers := make([]string, 0, len(byPeer))
	for peer := range byPeer {
		peers = append(peers, peer)
	}
	sort.Strings(peers)
	var rows []pageRow
	for _, peer := range peers {
		row := pageRow{Peer: peer}
		for _, ch := range channels {
			row.Cells = append(row.Cells, pageCellOf(byPeer[peer][ch], peer, ch))
		}
		rows = append(rows, row)
	}
	return rows
}

func pageCellOf(p PeerStatus, peer, channel string) pageCell {
	c := pageCell{Peer: peer, Channel: channel, State: "unknown", Links: p.LiveLinks,
		ToPeer: ByteSize(p.BytesToPeer), ToMember: ByteSize(p.BytesToMember), Modes: strings.Join(p.LinkModes, ", ")}
	switch {
	case p.Up:
		c.State = "up"
		c.Setup = time.Duration(p.SetupMS * float64(time.Millisecond)).Round(10 * time.Microsecond).String()
	case p.Path == PathDirect:
		c.State = "direct"
	case !p.LastProbe.IsZero() || p.LastError != "":
		c.State = "down"
	}
	return c
}

// channelExpiry lists the channel's certificate and CRLs with how soon
// each expires: "crit" within a day, "warn" within 30 days.
func channelExpiry(ch ChannelStatus, now time.Time) []pageExpiry {
	var out []pageExpiry
	add := func(what, subject string, at time.Time) {
		if at.IsZero() {
			return
		}
		left := at.Sub(now)
		level := ""
		switch {
		case left < 24*time.Hour:
			level = "crit"
		case left < 30*24*time.Hour:
			level = "warn"
		}
		out = append(out, pageExpiry{ch.Name, what, subject, at.UTC().Format(time.RFC3339), untilText(left), level})
	}
	if c := ch.Certificate; c != nil {
		add("certificate", c.Subject, c.NotAfter)
	}
	for _, crl := range ch.CRLs {
		where := crl.File
		if crl.URL != "" {
			where = crl.URL + " (fetched)"
		}
		add("CRL "+where, crl.Issuer, crl.NextUpdate)
	}
	return out
}

// untilText renders how long until an expiry: days beyond two, else hours
// and minutes; "expired" once it is past.
func untilText(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d > 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// ByteSize renders a byte count for a person: "512 B", "3.4 MiB".
func ByteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
