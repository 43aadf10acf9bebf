package cluster

import (
	"regexp"
	"strings"
	"time"
)

// dnsLabelRE matches an RFC 1123 label in lower case, as Kubernetes names are.
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

const dnsLabelRule = "must be a DNS label: lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit"

// validateStructure checks what the cluster file says regardless of the
// environment and of the member being planned: names, counts, ports and
// durations. Everything built from strings (which may hold ${VAR}) is
// checked by Config.Plan.
func validateStructure(raw *fileConfig) []Problem {
	var ps problems
	if strings.TrimSpace(raw.Group) == "" {
		ps.add("group", "not set (name the group, such as orders-gr)")
	}
	validateDurations(raw, &ps)
	validateCapture(raw, &ps)
	validateACMEStructure(raw, &ps)
	if len(raw.Channels) == 0 {
		ps.add("channels", "no channel (name at least one, such as group: {})")
	}
	for _, name := range sortedKeys(raw.Channels) {
		if !dnsLabelRE.MatchString(name) {
			ps.add("channels."+name, "channel name %s", dnsLabelRule)
		}
	}
	if len(raw.Members) < 2 {
		ps.add("members", "%d member(s); a group needs at least two", len(raw.Members))
	}
	for _, name := range sortedKeys(raw.Members) {
		validateMemberStructure(name, raw.Members[name], raw.Channels, &ps)
	}
	return ps.errors()
}

// validateCapture checks capture, capture_rules and capture_port: known
// values, and the last two only in drop-in mode.
func validateCapture(raw *fileConfig, ps *problems) {
	switch raw.Capture {
	case "", CaptureLoopback, CaptureTransparent:
	default:
		ps.add("capture", "unknown value %q (want loopback, the default, or transparent)", raw.Capture)
	}
	switch raw.CaptureRules {
	case "", CaptureRulesManaged, CaptureRulesExtern:
	default:
		ps.add("capture_rules", "unknown value %q (want managed, the default, or external)", raw.CaptureRules)
	}
	if raw.CapturePort < 0 || raw.CapturePort > 65535 {
		ps.add("capture_port", "%d is not a port", raw.CapturePort)
	}
	if raw.Capture != CaptureTransparent {
		if raw.CaptureRules != "" {
			ps.add("capture_rules", "only means something with capture: transparent")
		}
		if raw.CapturePort != 0 {
			ps.add("capture_port", "only means something with capture: transparent")
		}
		return
	}
	const uidsUnsupported = "not supported with capture: transparent (the capture rules take every local process's connections to the peers)"
	if raw.AllowedUIDs != nil {
		ps.add("allowed_uids", uidsUnsupported)
	}
	for _, name := range sortedKeys(raw.Members) {
		if raw.Members[name].AllowedUIDs != nil {
			ps.add("members."+name+".allowed_uids", uidsUnsupported)
		}
	}
}

// validateDurations checks the optional timing keys.
func validateDurations(raw *fileConfig, ps *problems) {
	positive := []struct {
		key string
		d   *duration
	}{
		{"reload_interval", raw.ReloadInterval},
		{"dial_timeout", raw.DialTimeout},
		{"handshake_timeout", raw.HandshakeTimeout},
		{"peer_timeout", raw.PeerTimeout},
		{"drain_timeout", raw.DrainTimeout},
	}
	for _, p := range positive {
		if p.d != nil && *p.d <= 0 {
			ps.add(p.key, "must be positive, got %s (leave it out for the default)", p.d.or(0))
		}
	}
	if d := raw.PeerTimeout.or(0); d > 0 && d < 2*time.Second {
		ps.add("peer_timeout", "must be at least 2s, got %s (keepalive probes are whole seconds apart)", raw.PeerTimeout.or(0))
	}
	if raw.IdleTimeout != nil && *raw.IdleTimeout < 0 {
		ps.add("idle_timeout", "must not be negative, got %s (0 means no idle timeout)", raw.IdleTimeout.or(0))
	}
	if raw.HalfCloseTimeout != nil && *raw.HalfCloseTimeout < 0 {
		ps.add("half_close_timeout", "must not be negative, got %s (0 means none)", raw.HalfCloseTimeout.or(0))
	}
	if d := raw.ProbeInterval.or(0); d < 0 || d > 0 && d < 100*time.Millisecond {
		ps.add("probe_interval", "must be 0 (no probes) or at least 100ms, got %s", d)
	}
}

// validateMemberStructure checks one member's name, address presence and
// ports.
func validateMemberStructure(name string, m memberConfig, channels map[string]channelConfig, ps *problems) {
	path := "members." + name
	if !dnsLabelRE.MatchString(name) {
		ps.add(path, "member name %s", dnsLabelRule)
	}
	if strings.TrimSpace(m.Address) == "" {
		ps.add(path+".address", "not set (host:port where peers reach this member's sidecar)")
	}
	for _, ch := range sortedKeys(channels) {
		if _, ok := m.Ports[ch]; !ok {
			ps.add(path+".ports", "no port for channel %s", ch)
		}
	}
	for _, ch := range sortedKeys(m.Ports) {
		port := m.Ports[ch]
		if _, ok := channels[ch]; !ok {
			ps.add(path+".ports."+ch, "unknown channel %s (channels: %s)", ch, strings.Join(sortedKeys(channels), ", "))
			continue
		}
		if port < 1 || port > 65535 {
			ps.add(path+".ports."+ch, "port %d out of range 1-65535", port)
		}
	}
}
