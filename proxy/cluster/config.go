package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// TLSOptions are the MySQL-style TLS options of the cluster file's `tls`
// block and of `channels.NAME.tls`. An empty string means unset (inherited).
type TLSOptions struct {
	SSLMode         string `yaml:"ssl_mode"`
	SSLCA           string `yaml:"ssl_ca"`
	SSLCAPath       string `yaml:"ssl_capath"`
	SSLCert         string `yaml:"ssl_cert"`
	SSLKey          string `yaml:"ssl_key"`
	SSLCRL          string `yaml:"ssl_crl"`
	SSLCRLPath      string `yaml:"ssl_crlpath"`
	SSLCipher       string `yaml:"ssl_cipher"`
	TLSCiphersuites string `yaml:"tls_ciphersuites"`
	TLSVersion      string `yaml:"tls_version"`
	TLSKex          string `yaml:"tls_kex"`
	// SSLCRLFetch, "true" or "false" (default), fetches the CRL of every
	// certificate of a peer's chain from the http:// distribution point
	// the certificate names, besides ssl_crl and ssl_crlpath.
	SSLCRLFetch string `yaml:"ssl_crl_fetch"`
	// SSLCRLFetchFailOpen, "true" or "false" (default), lets a certificate
	// pass whose fetched CRL cannot be had or is past its nextUpdate,
	// counted in groupwire_crl_fail_open_total. The default refuses it.
	SSLCRLFetchFailOpen string `yaml:"ssl_crl_fetch_fail_open"`
	// AcceptModes, during a rolling ssl_mode change, are the modes the
	// member takes from dialing peers (and keeps live links at) besides
	// its own ssl_mode, which it still dials with; it must list ssl_mode.
	AcceptModes []string `yaml:"accept_modes"`
	// ACME, when set, makes the member's certificate and key come from an
	// ACME CA instead of ssl_cert/ssl_key (see ACMEOptions).
	ACME *ACMEOptions `yaml:"acme"`
	// SPIFFE, when set, makes the member's certificate and the CAs peers
	// must chain to come from the SPIFFE Workload API (see SPIFFEOptions).
	SPIFFE *SPIFFEOptions `yaml:"spiffe"`
}

// DefaultLocalIP is a member's local_ip when the file sets none. The other
// defaults belong to the packages that use them: transport's for the link
// timeouts, certs' for reload_interval; the Plan fills them all in.
const DefaultLocalIP = "127.0.0.1"

// DefaultProbeInterval is how often each peer is probed on each channel
// when probe_interval is not set.
const DefaultProbeInterval = 5 * time.Second

// DefaultDrainTimeout is how long a stopping sidecar lets live links
// finish when drain_timeout is not set.
const DefaultDrainTimeout = 10 * time.Second

// Capture modes and rule ownership (capture, capture_rules).
const (
	CaptureLoopback     = "loopback"
	CaptureTransparent  = "transparent"
	CaptureRulesManaged = "managed"
	CaptureRulesExtern  = "external"
)

// DefaultCapturePort is the capture listener's port when capture_port is
// not set.
const DefaultCapturePort = 24901

// DefaultHalfCloseTimeout is how long a link one direction of which has
// ended may carry nothing the other way before it is cut (HAProxy's
// timeout client-fin). A link that keeps moving bytes is never cut by it.
const DefaultHalfCloseTimeout = 60 * time.Second

// Config is a cluster file as written: decoded strictly and checked for
// structure, but with ${VAR} references, listen templates and TLS options
// not yet evaluated. Config.Plan turns it into one member's Plan.
type Config struct {
	file string     // name the file was loaded under, for errors
	dir  string     // folder relative ssl_* paths are resolved against
	raw  fileConfig // the decoded file
}

// fileConfig mirrors the cluster file's keys.
type fileConfig struct {
	Group            string                   `yaml:"group"`
	TLS              TLSOptions               `yaml:"tls"`
	Channels         map[string]channelConfig `yaml:"channels"`
	Members          map[string]memberConfig  `yaml:"members"`
	ReloadInterval   *duration                `yaml:"reload_interval"`
	CloseOnExpiry    *bool                    `yaml:"close_on_expiry"`
	AllowNonLoopback bool                     `yaml:"allow_non_loopback"`
	Admin            string                   `yaml:"admin"`
	DialTimeout      *duration                `yaml:"dial_timeout"`
	HandshakeTimeout *duration                `yaml:"handshake_timeout"`
	PeerTimeout      *duration                `yaml:"peer_timeout"`
	IdleTimeout      *duration                `yaml:"idle_timeout"`
	HalfCloseTimeout *duration                `yaml:"half_close_timeout"`
	// Capture is how the members' peer traffic reaches the sidecars:
	// "loopback" (the default: each member dials its peers at local_ip on
	// per-member ports) or "transparent" (drop-in: members keep their real
	// addresses and ports, nftables redirects their peer connections).
	Capture string `yaml:"capture"`
	// CaptureRules is "managed" (the default: the sidecar installs its
	// nftables table) or "external" (someone else installs what check
	// prints, as an init container or ExecStartPre does).
	CaptureRules string `yaml:"capture_rules"`
	// CapturePort is the capture listener's port on 127.0.0.1, where the
	// rules redirect captured connections (default 24901).
	CapturePort   int           `yaml:"capture_port"`
	ProbeInterval *duration     `yaml:"probe_interval"`
	DrainTimeout  *duration     `yaml:"drain_timeout"`
	Limits        *limitsConfig `yaml:"limits"`
	// AllowedUIDs, when set, lets only local processes of these users use
	// the outbound (loopback) listeners; unset lets any local process.
	AllowedUIDs []int `yaml:"allowed_uids"`
}

// channelConfig is one entry of `channels`.
type channelConfig struct {
	TLS TLSOptions `yaml:"tls"`
}

// memberConfig is one entry of `members`.
type memberConfig struct {
	Address  string         `yaml:"address"`  // host:port of the member's sidecar, as peers dial it
	Listen   string         `yaml:"listen"`   // inbound listener; default ":" + port of address
	Identity string         `yaml:"identity"` // name its certificate carries; default host of address
	LocalIP  string         `yaml:"local_ip"` // loopback address of the member; default 127.0.0.1
	Admin    *string        `yaml:"admin"`    // overrides the top-level admin; "" turns it off
	Ports    map[string]int `yaml:"ports"`    // the member's service port per channel
	// AllowedUIDs overrides the top-level allowed_uids for this member.
	AllowedUIDs []int `yaml:"allowed_uids"`
}

// ParseConfig decodes a cluster file strictly (an unknown key is an error
// naming it and its line) and checks its structure. name is used in errors
// and its folder is where relative ssl_* paths are resolved. Problems are
// returned together as a *ConfigError.
func ParseConfig(data []byte, name string) (*Config, error) {
	raw, probs := decodeConfig(data)
	if len(probs) == 0 {
		probs = validateStructure(&raw)
	}
	if len(probs) > 0 {
		return nil, &ConfigError{File: name, Problems: probs}
	}
	return &Config{file: name, dir: filepath.Dir(name), raw: raw}, nil
}

// LoadConfig reads and parses the cluster file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster file: %w", err)
	}
	return ParseConfig(data, path)
}

// Members returns the names of the group's members, sorted.
func (c *Config) Members() []string {
	return sortedKeys(c.raw.Members)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
