// Package localgroup builds and runs a whole replicated group on one
// machine: a throwaway PKI, a cluster file in which every member has its
// own loopback address (127.0.0.11, .12, ...), the sidecars, and tiny echo
// services standing in for the database members. `groupwire demo` runs it
// and the integration tests build on it. It is not for production.
package localgroup

import (
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/proxy"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// Options describe the group to build. Zero values take the defaults.
type Options struct {
	Dir      string   // folder for the PKI and cluster.yaml; required
	Members  []string // default mysql-1, mysql-2, mysql-3
	Channels []string // default group, recovery
	Mode     string   // ssl_mode of every channel; default VERIFY_IDENTITY
	// IPPrefix holds the first three octets of the members' loopback
	// addresses; member i gets IPPrefix.(11+i). Default "127.0.0".
	IPPrefix string
	LinkPort int // inbound link port on each member's address; default 24900
	BasePort int // service port of channel c, member i: BasePort+10c+i; default 33061
	// ChannelCAs gives every channel after the first its own CA and member
	// certificates, as group_replication_recovery_ssl_* may differ from the
	// server's ssl_*.
	ChannelCAs bool
	// ExtraYAML is appended to the cluster file's top level.
	ExtraYAML string
	// AdminPort, when set, gives every member an admin listener at its
	// own address and this port.
	AdminPort int
	// NoEcho leaves the members' service ports to the caller: Start runs
	// only the sidecars.
	NoEcho bool
}

// Group is a prepared group: files on disk and the parsed cluster file.
type Group struct {
	Dir        string
	ConfigPath string
	Config     *cluster.Config
	Members    []Member
	Channels   []string
	// CAs holds each channel's CA (the first channel's CA signs every
	// channel unless ChannelCAs was set).
	CAs map[string]*PKI

	opts   Options // as given to Prepare, defaults filled in
	noEcho bool
}

// FileOptions change what ClusterYAML writes; zero fields keep what
// Prepare wrote.
type FileOptions struct {
	Members []string // the members listed; default every member
	Mode    string   // ssl_mode of every channel
	// AcceptModes, when set, is every channel's accept_modes (a rolling
	// ssl_mode change); the key material is written whenever a mode of the
	// channel runs TLS.
	AcceptModes []string
	CAFile      string // ssl_ca of every channel; default the channel CA's ca.pem
	CRLFile     string // ssl_crl of every channel; default the channel CA's crl.pem
	ExtraYAML   string // default Options.ExtraYAML
}

// Member is one member of a prepared group.
type Member struct {
	Name  string
	IP    string
	Ports map[string]int // service port per channel
}

// PKI is one CA folder of the group: the CA and the paths of its files.
type PKI struct {
	CA      *devpki.CA
	Dir     string
	Leaves  map[string]*devpki.Leaf // current certificate per member
	revoked []*big.Int
}

// Prepare writes the PKI and the cluster file into opts.Dir and parses it.
func Prepare(opts Options) (*Group, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("localgroup: no folder given")
	}
	opts = withDefaults(opts)
	g := &Group{Dir: opts.Dir, Channels: opts.Channels, CAs: make(map[string]*PKI), opts: opts, noEcho: opts.NoEcho}
	for i, name := range opts.Members {
		m := Member{Name: name, IP: fmt.Sprintf("%s.%d", opts.IPPrefix, 11+i), Ports: make(map[string]int)}
		for c, ch := range opts.Channels {
			m.Ports[ch] = opts.BasePort + 10*c + i
		}
		g.Members = append(g.Members, m)
	}
	for c, ch := range opts.Channels {
		if c > 0 && !opts.ChannelCAs {
			g.CAs[ch] = g.CAs[opts.Channels[0]]
			continue
		}
		dir := filepath.Join(opts.Dir, "pki-"+ch)
		pki, err := g.newPKI(dir, "groupwire demo CA ("+ch+")")
		if err != nil {
			return nil, err
		}
		g.CAs[ch] = pki
	}
	g.ConfigPath = filepath.Join(opts.Dir, "cluster.yaml")
	if err := os.WriteFile(g.ConfigPath, []byte(g.ClusterYAML(FileOptions{})), 0o644); err != nil {
		return nil, fmt.Errorf("localgroup: %w", err)
	}
	cfg, err := cluster.LoadConfig(g.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("localgroup: %w", err)
	}
	g.Config = cfg
	return g, nil
}

func withDefaults(o Options) Options {
	if len(o.Members) == 0 {
		o.Members = []string{"mysql-1", "mysql-2", "mysql-3"}
	}
	if len(o.Channels) == 0 {
		o.Channels = []string{"group", "recovery"}
	}
	if o.Mode == "" {
		o.Mode = "VERIFY_IDENTITY"
	}
	if o.IPPrefix == "" {
		o.IPPrefix = "127.0.0"
	}
	if o.LinkPort == 0 {
		o.LinkPort = 24900
	}
	if o.BasePort == 0 {
		o.BasePort = 33061
	}
	return o
}

// newPKI makes a CA and a certificate per member in dir.
func (g *Group) newPKI(dir, cn string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("localgroup: %w", err)
	}
	ca, err := devpki.NewRootCA(cn)
	if err != nil {
		return nil, err
	}
	pki := &PKI{CA: ca, Dir: dir, Leaves: make(map[string]*devpki.Leaf)}
	if err := devpki.WriteFile(filepath.Join(dir, devpki.CAFile), ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	for _, m := range g.Members {
		if err := pki.Issue(m.Name, devpki.LeafTemplate{CommonName: m.Name, DNSNames: []string{m.Name}, IPs: []net.IP{net.ParseIP(m.IP)}}); err != nil {
			return nil, err
		}
	}
	if err := pki.WriteCRL(); err != nil {
		return nil, err
	}
	return pki, nil
}

// Issue issues t and writes it as member's certificate and key
// (NAME.pem, NAME-key.pem), replacing what was there atomically.
func (p *PKI) Issue(member string, t devpki.LeafTemplate) error {
	leaf, err := p.CA.Issue(t)
	if err != nil {
		return err
	}
	// Key first: a watcher that sees the new certificate before its key
	// reports a mismatch and keeps the old pair until the key arrives.
	if err := devpki.WriteFile(p.KeyPath(member), leaf.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := devpki.WriteFile(p.CertPath(member), leaf.ChainPEM, 0o644); err != nil {
		return err
	}
	p.Leaves[member] = leaf
	return nil
}

// Revoke adds member's current certificate to the CRL and rewrites it.
func (p *PKI) Revoke(member string) error {
	leaf, ok := p.Leaves[member]
	if !ok {
		return fmt.Errorf("localgroup: no certificate for %s", member)
	}
	return p.RevokeSerials(leaf.Cert.SerialNumber)
}

// RevokeSerials adds serials to the CA's CRL and rewrites it, as revoking
// every certificate a compromised member ever had does.
func (p *PKI) RevokeSerials(serials ...*big.Int) error {
	p.revoked = append(p.revoked, serials...)
	return p.WriteCRL()
}

// WriteCRL writes the CRL (valid for a week) atomically.
func (p *PKI) WriteCRL() error {
	now := time.Now()
	crl, err := p.CA.CRL(p.revoked, now.Add(-time.Minute), now.Add(7*24*time.Hour))
	if err != nil {
		return err
	}
	return devpki.WriteFile(p.CRLPath(), crl, 0o644)
}

// CertPath is where member's certificate is.
func (p *PKI) CertPath(member string) string { return devpki.CertPath(p.Dir, member) }

// KeyPath is where member's key is.
func (p *PKI) KeyPath(member string) string { return devpki.KeyPath(p.Dir, member) }

// CRLPath is where the CRL is.
func (p *PKI) CRLPath() string { return filepath.Join(p.Dir, devpki.CRLFile) }

// ClusterYAML returns a cluster file for the group, changed as fo says.
func (g *Group) ClusterYAML(fo FileOptions) string {
	o := g.opts
	if fo.Mode == "" {
		fo.Mode = o.Mode
	}
	if fo.ExtraYAML == "" {
		fo.ExtraYAML = o.ExtraYAML
	}
	tlsOn := fo.Mode != "DISABLED"
	for _, m := range fo.AcceptModes {
		tlsOn = tlsOn || m != "DISABLED"
	}
	var b strings.Builder
	first := g.CAs[o.Channels[0]]
	fmt.Fprintf(&b, "# A local demo group: every member has its own loopback address.\ngroup: localgroup\n")
	fmt.Fprintf(&b, "tls:\n  ssl_mode: %s\n", fo.Mode)
	if len(fo.AcceptModes) > 0 {
		fmt.Fprintf(&b, "  accept_modes: [%s]\n", strings.Join(fo.AcceptModes, ", "))
	}
	if tlsOn {
		b.WriteString(g.tlsFiles("  ", first, fo))
	}
	b.WriteString("channels:\n")
	for _, ch := range o.Channels {
		pki := g.CAs[ch]
		if pki == first || !tlsOn {
			fmt.Fprintf(&b, "  %s: {}\n", ch)
			continue
		}
		fmt.Fprintf(&b, "  %s:\n    tls:\n%s", ch, g.tlsFiles("      ", pki, fo))
	}
	b.WriteString("members:\n")
	for _, m := range g.Members {
		if fo.Members != nil && !slices.Contains(fo.Members, m.Name) {
			continue
		}
		b.WriteString(g.memberLine(m))
	}
	b.WriteString(fo.ExtraYAML)
	return b.String()
}

// tlsFiles is the key material keys of one TLS block, paths relative to
// the group folder; fo's CAFile and CRLFile, when set, replace the CA's.
func (g *Group) tlsFiles(indent string, pki *PKI, fo FileOptions) string {
	d := g.rel(pki.Dir)
	ca, crl := d+"/"+devpki.CAFile, d+"/"+devpki.CRLFile
	if fo.CAFile != "" {
		ca = g.rel(fo.CAFile)
	}
	if fo.CRLFile != "" {
		crl = g.rel(fo.CRLFile)
	}
	member := "${" + cluster.MemberEnvVar + "}"
	return fmt.Sprintf("%sssl_ca: %s\n%sssl_cert: %s\n%sssl_key: %s\n%sssl_crl: %s\n",
		indent, ca, indent, devpki.CertPath(d, member), indent, devpki.KeyPath(d, member), indent, crl)
}

func (g *Group) rel(path string) string {
	if r, err := filepath.Rel(g.Dir, path); err == nil {
		return r
	}
	return path
}

// memberLine is one member's entry.
func (g *Group) memberLine(m Member) string {
	o := g.opts
	var ports []string
	for _, ch := range o.Channels {
		ports = append(ports, fmt.Sprintf("%s: %d", ch, m.Ports[ch]))
	}
	addr := net.JoinHostPort(m.IP, fmt.Sprint(o.LinkPort))
	admin := ""
	if o.AdminPort != 0 {
		admin = fmt.Sprintf(", admin: %q", net.JoinHostPort(m.IP, fmt.Sprint(o.AdminPort)))
	}
	return fmt.Sprintf("  %s: {address: %q, listen: %q, identity: %s, local_ip: %s%s, ports: {%s}}\n",
		m.Name, addr, addr, m.Name, m.IP, admin, strings.Join(ports, ", "))
}

// WriteConfig writes ClusterYAML(fo) to path atomically (devpki.WriteFile),
// so a watching sidecar never reads half a file.
func (g *Group) WriteConfig(path string, fo FileOptions) error {
	return devpki.WriteFile(path, []byte(g.ClusterYAML(fo)), 0o644)
}

// Member returns the named member.
func (g *Group) Member(name string) Member {
	for _, m := range g.Members {
		if m.Name == name {
			return m
		}
	}
	return Member{}
}

// ServiceAddr is where member's own service listens for channel.
func (g *Group) ServiceAddr(member, channel string) string {
	m := g.Member(member)
	return net.JoinHostPort(m.IP, fmt.Sprint(m.Ports[channel]))
}

// TunnelAddr is the address on from's loopback that reaches to's service
// on channel through the sidecars: from's IP at to's port.
func (g *Group) TunnelAddr(from, to, channel string) string {
	return net.JoinHostPort(g.Member(from).IP, fmt.Sprint(g.Member(to).Ports[channel]))
}

// Plan returns member's plan from the cluster file.
func (g *Group) Plan(member string) (*cluster.Plan, error) {
	return g.Config.Plan(member, os.LookupEnv)
}

// Sidecar builds member's sidecar.
func (g *Group) Sidecar(member string, opts proxy.Options) (*proxy.Sidecar, error) {
	plan, err := g.Plan(member)
	if err != nil {
		return nil, err
	}
	return proxy.New(plan, opts)
}
